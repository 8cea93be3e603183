"""Clients that act as a controller's ServiceAccount (upstream's
``--use-service-account-credentials`` client builder).

The controller manager itself authenticates as ``system:kube-controller-manager``, whose
role lets it create ServiceAccounts in kube-system and request tokens for them, and list
and watch everything (for the shared informers) — but write nothing else.  Each
controller writes as ``system:serviceaccount:kube-system:<its name>``, so it holds only
its ``system:controller:<name>`` role.

For each ServiceAccount the builder makes sure it exists, asks for a token through the
TokenRequest API and hands out a client whose token is read on every request; a
background task renews the token when 80 % of its life has passed (or retries sooner
after a failure), so long-running controllers never hold an expired token.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from kubelite.api.resources import SERVICEACCOUNTS
from kubelite.client.errors import AlreadyExists
from kubelite.client.protocols import APIClient
from kubelite.client.rest import Client, ClientConfig

log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
EXPIRATION = 3600
RETRY = 5.0


@dataclass
class _Token:
    value: str
    issued: float
    expires: float


class ServiceAccountClients:
    """One client per controller ServiceAccount, with self-renewing tokens."""

    def __init__(self, base: Client, *, namespace: str = NAMESPACE, expiration: int = EXPIRATION):
        self.base = base
        self.namespace = namespace
        self.expiration = expiration
        self._tokens: dict[str, _Token] = {}
        self._clients: dict[str, Client] = {}
        self._renewers: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    async def client_for(self, sa: str) -> APIClient:
        """The client acting as kube-system/<sa> (created, with its token, on first use)."""
        async with self._lock:
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

    async def _request_token(self, sa: str) -> _Token:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.expiration}}
        path = self.base.resource(SERVICEACCOUNTS).path(self.namespace, sa, "token")
        out = await self.base.request("POST", path, body=body)
        now = time.time()
        return _Token(out["status"]["token"], now, now + int(out["spec"].get("expirationSeconds") or self.expiration))

    async def _renew(self, sa: str) -> None:
        """Replace the token once 80 % of its lifetime has passed."""
        while True:
            tok = self._tokens[sa]
            await asyncio.sleep(max(tok.issued + 0.8 * (tok.expires - tok.issued) - time.time(), 0.0))
            try:
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
