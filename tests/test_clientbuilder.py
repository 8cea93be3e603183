"""The controllers' ServiceAccount clients: a token per ServiceAccount, renewed when the
ServiceAccount is recreated (which voids its tokens) — against a small fake API."""
from __future__ import annotations

import asyncio

from kubelite.client.errors import AlreadyExists, NotFound
from kubelite.client.rest import ClientConfig
from kubelite.controllers.clientbuilder import ServiceAccountClients


class FakeAccounts:
    def __init__(self, api: FakeAPI):
        self.api = api

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        return f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/{subresource}"

    async def create(self, obj: dict, namespace: str = "") -> dict:
        name = obj["metadata"]["name"]
        if name in self.api.accounts:
            raise AlreadyExists(409, "AlreadyExists", "exists")
        self.api.uids += 1
        self.api.accounts[name] = f"uid-{self.api.uids}"
        return obj

    async def get(self, name: str, namespace: str = "") -> dict:
        if name not in self.api.accounts:
            raise NotFound(404, "NotFound", "not found")
        return {"metadata": {"name": name, "uid": self.api.accounts[name]}}


class FakeAPI:
    def __init__(self) -> None:
        self.config = ClientConfig(server="https://127.0.0.1:1")
        self.accounts: dict[str, str] = {}
        self.uids = 0
        self.tokens: list[tuple[str, dict]] = []

    def resource(self, info: object) -> FakeAccounts:
        return FakeAccounts(self)

    async def request(self, method: str, path: str, *, body: dict | None = None, **_: object) -> dict:
        name = path.split("/")[-2]
        token = f"{name}@{self.accounts[name]}#{len(self.tokens)}"
        self.tokens.append((path, body or {}))
        return {"spec": {"expirationSeconds": (body or {})["spec"]["expirationSeconds"]}, "status": {"token": token}}


async def _until(cond, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def test_a_token_per_service_account_created_on_first_use():
    async def run() -> None:
        api = FakeAPI()
        sac = ServiceAccountClients(api, expiration=3600)
        c1 = await sac.client_for("deployment-controller")
        assert await sac.client_for("deployment-controller") is c1
        assert "deployment-controller" in api.accounts
        assert c1.config.token_source is not None
        assert c1.config.token_source().startswith("deployment-controller@uid-1#")
        assert api.tokens[0][0].endswith("/kube-system/serviceaccounts/deployment-controller/token")
        assert api.tokens[0][1]["spec"] == {"expirationSeconds": 3600}
        await sac.close()
    asyncio.run(run())


def test_a_recreated_service_account_gets_a_new_token():
    async def run() -> None:
        api = FakeAPI()
        sac = ServiceAccountClients(api, expiration=3600, check_every=0.01)
        client = await sac.client_for("replicaset-controller")
        assert client.config.token_source is not None
        first = client.config.token_source()
        del api.accounts["replicaset-controller"]  # someone deleted it: its tokens are void
        source = client.config.token_source
        await _until(lambda: source() != first)
        assert source().startswith("replicaset-controller@uid-2#")
        await sac.close()
    asyncio.run(run())


def test_accounts_are_set_up_side_by_side_and_each_only_once():
    """The controller manager asks for every controller's client at start: one account's token
    request waiting must not hold up another's, and two callers of one account share its set-up."""
    async def run() -> None:
        api = FakeAPI()
        gate = asyncio.Event()
        plain = api.request

        async def slow_request(method: str, path: str, **kw: object) -> dict:
            if "/slow/" in path:
                await gate.wait()
            return await plain(method, path, **kw)
        api.request = slow_request  # a token request that hangs for one account
        sac = ServiceAccountClients(api, expiration=3600)
        try:
            slow = asyncio.create_task(sac.client_for("slow"))
            await _until(lambda: "slow" in api.accounts)
            fast, again = await asyncio.wait_for(asyncio.gather(sac.client_for("fast"), sac.client_for("fast")), 5)
            assert fast is again and not slow.done()
            gate.set()
            await slow
            assert sorted(p.split("/")[-2] for p, _ in api.tokens) == ["fast", "slow"]
        finally:
            await sac.close()
    asyncio.run(run())
