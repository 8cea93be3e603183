"""Clients that act as a controller's ServiceAccount (upstream's
``--use-service-account-credentials`` client builder).

The controller manager itself authenticates as ``system:kube-controller-manager``, whose
role lets it create ServiceAccounts in kube-system and request tokens for them, and list
and watch everything (for the shared informers) — but write nothing else.  Each
controller writes as ``system:serviceaccount:kube-system:<its name>``, so it holds only
its ``system:controller:<name>`` role.

For each ServiceAccount the builder makes sure it exists, asks for a token through the
TokenRequest API and hands out a client whose token is read on every request.  A
background task renews the token when 80 % of its life has passed (or retries sooner
after a failure), so long-running controllers never hold an expired token; it also looks
every minute whether the ServiceAccount was deleted or recreated (which voids its tokens)
and then recreates it and fetches a new token at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from kubelite.api.resources import SERVICEACCOUNTS
from kubelite.client.errors import AlreadyExists, NotFound
from kubelite.client.protocols import APIClient
from kubelite.client.rest import Client, ClientConfig

log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
EXPIRATION = 3600
RETRY = 5.0
CHECK_EVERY = 60.0


@dataclass
class _Token:
    value: str
    issued: float
    expires: float
    sa_uid: str


class ServiceAccountClients:
    """One client per controller ServiceAccount, with self-renewing tokens."""

    def __init__(self, base: Client, *, namespace: str = NAMESPACE, expiration: int = EXPIRATION,
                 check_every: float = CHECK_EVERY):
        self.base = base
        self.namespace = namespace
        self.expiration = expiration
        self.check_every = check_every
        self._tokens: dict[str, _Token] = {}
        self._clients: dict[str, Client] = {}
        self._renewers: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # one per account: accounts are set up side by side

    async def client_for(self, sa: str) -> APIClient:
        """The client acting as kube-system/<sa> (created, with its token, on first use)."""
        async with self._locks.setdefault(sa, asyncio.Lock()):
            client = self._clients.get(sa)
            if client is not None:
                return client
            await self._ensure_service_account(sa)
            self._tokens[sa] = await self._request_token(sa)
            cfg = self.base.config
            client = Client(ClientConfig(server=cfg.server, ca_file=cfg.ca_file, insecure=cfg.insecure,
                                         user_agent=f"{cfg.user_agent}/{sa}",
                                         token_source=lambda: self._tokens[sa].value))
            self._clients[sa] = client
            self._renewers[sa] = asyncio.get_running_loop().create_task(self._renew(sa), name=f"sa-token-{sa}")
            return client

    async def _ensure_service_account(self, sa: str) -> None:
        try:
            await self.base.resource(SERVICEACCOUNTS).create(
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": self.namespace}},
                self.namespace)
        except AlreadyExists:
            pass

    async def _sa_uid(self, sa: str) -> str:
        try:
            obj = await self.base.resource(SERVICEACCOUNTS).get(sa, self.namespace)
        except NotFound:
            return ""
        return str((obj.get("metadata") or {}).get("uid") or "")

    async def _request_token(self, sa: str) -> _Token:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.expiration}}
        path = self.base.resource(SERVICEACCOUNTS).path(self.namespace, sa, "token")
        uid = await self._sa_uid(sa)
        out = await self.base.request("POST", path, body=body)
        now = time.time()
        return _Token(out["status"]["token"], now, now + int(out["spec"].get("expirationSeconds") or self.expiration),
                      uid)

    async def _renew(self, sa: str) -> None:
        """Replace the token once 80 % of its lifetime has passed, or at once when its
        ServiceAccount was deleted or recreated."""
        while True:
            tok = self._tokens[sa]
            due = tok.issued + 0.8 * (tok.expires - tok.issued)
            await asyncio.sleep(min(max(due - time.time(), 0.0), self.check_every))
            try:
                if time.time() < due and await self._sa_uid(sa) == tok.sa_uid:
                    continue
                await self._ensure_service_account(sa)
                self._tokens[sa] = await self._request_token(sa)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep the old token while it lasts; try again soon
                log.warning("renewing the token of %s/%s failed: %s", self.namespace, sa, e)
                await asyncio.sleep(RETRY)

    async def close(self) -> None:
        """Stop renewing and close every client."""
        for task in self._renewers.values():
            task.cancel()
        await asyncio.gather(*self._renewers.values(), return_exceptions=True)
        for client in self._clients.values():
            await client.close()
        self._renewers.clear()
        self._clients.clear()
