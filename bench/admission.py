"""Admission benchmark (not run by CI): creates/s with CEL rules and a webhook in the path.

Starts one `kubelite server` (API only) on a free loopback port in a temporary data
directory and measures creates/s with p50/p99 (``--clients`` clients, ``--creates``
creates each) for five modes, each in a namespace of its own:

1. plain ConfigMaps;
2. custom resources of a CRD without rules;
3. custom resources of a CRD whose schema has an ``x-kubernetes-validations`` CEL rule;
4. as 3, plus a ValidatingWebhookConfiguration whose webhook (tests/webhookkit.py's
   aiohttp server over TLS on 127.0.0.1, CA made with ``cryptography``, in a child
   process so it does not share the clients' interpreter lock) allows them;
5. as 3, plus a ValidatingAdmissionPolicy with one CEL validation, bound with Deny.

Before timing, modes 4 and 5 probe until the webhook has seen a request and the policy
has refused a bad object, so the timed creates really pass through them.

    python bench/admission.py [--clients 8] [--creates 250]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import ms, pct, timed_many  # bench/api.py; it puts tests/ on sys.path
from conftest import API_ONLY, start_server
from webhookkit import WebhookServer

from kubelite.api.resources import (
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    NAMESPACES,
    VALIDATINGADMISSIONPOLICIES,
    VALIDATINGADMISSIONPOLICYBINDINGS,
    VALIDATINGWEBHOOKCONFIGURATIONS,
    ResourceInfo,
)
from kubelite.client.errors import Invalid, NotFound, StatusError
from kubelite.client.rest import Client, ClientConfig, ResourceClient

Obj = dict[str, Any]
PLAIN_GROUP = "plain.bench.kubelite.dev"
CEL_GROUP = "cel.bench.kubelite.dev"
LABEL = "admission-bench"
MEASURED = f"{LABEL}/run=measured"
# The webhook kit's "deny" endpoint allows every object that lacks its deny marker, as ours do.
WEBHOOK_PATH = "/deny"

# (mode key, table label); the namespace of a mode is ``bench-<key>``.
MODES: tuple[tuple[str, str], ...] = (
    ("configmap", "ConfigMap"),
    ("cr", "CR, no rules"),
    ("cel", "CR, CEL rule"),
    ("webhook", "CR, CEL rule + webhook"),
    ("vap", "CR, CEL rule + admission policy"),
)


class WebhookProcess:
    """The webhook server in a child process (this script with ``--serve-webhook``).

    The child prints its port and CA bundle as one JSON line, then answers each ``names NS``
    line on its stdin with the JSON list of object names it reviewed in namespace NS; it
    exits when its stdin closes.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-webhook"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        line = self._out.readline()
        if not line:
            self.close()
            raise RuntimeError("the webhook process did not start")
        hello = json.loads(line)
        self.port: int = hello["port"]
        self.ca_bundle: str = hello["caBundle"]

    def url(self, path: str) -> str:
        """The https URL of one endpoint."""
        return f"https://127.0.0.1:{self.port}{path}"

    def names(self, namespace: str) -> list[str]:
        """The names of the objects of ``namespace`` the webhook has reviewed."""
        self._in.write(f"names {namespace}\n")
        self._in.flush()
        names: list[str] = json.loads(self._out.readline())
        return names

    def close(self) -> None:
        """Close the child's stdin and wait for it to exit (killed after 10 s)."""
        try:
            self._in.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def serve_webhook() -> None:
    """The child side of WebhookProcess."""
    hooks = WebhookServer()
    try:
        print(json.dumps({"port": hooks.port, "caBundle": hooks.ca_bundle}), flush=True)
        for line in sys.stdin:
            _, _, ns = line.strip().partition(" ")
            names = [r["request"].get("name", "") for r in hooks.seen(WEBHOOK_PATH)
                     if r["request"].get("namespace") == ns]
            print(json.dumps(names), flush=True)
    finally:
        hooks.close()


@dataclass
class Result:
    """One mode's measurement."""

    mode: str
    label: str
    creates: int = 0
    errors: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    stored: int = 0          # measured objects listed back afterwards
    webhook_reviews: int = 0  # reviews of measured objects the webhook received

    @property
    def rate(self) -> float:
        """Successful timed creates per second."""
        return self.creates / self.wall if self.wall else 0.0


def widget_crd(group: str, *, rule: bool) -> Obj:
    """The benchmark's CRD (kind Widget), with or without a CEL rule on spec."""
    spec: Obj = {"type": "object", "properties": {
        "min": {"type": "integer"}, "max": {"type": "integer"}, "owner": {"type": "string"}}}
    if rule:
        spec["x-kubernetes-validations"] = [{"rule": "self.min <= self.max", "message": "min must not exceed max"}]
    schema = {"type": "object", "properties": {"spec": spec}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def widget_info(group: str) -> ResourceInfo:
    """How the client addresses the CRD's resource."""
    return ResourceInfo(group, "v1", "Widget", "widgets")


def widget(group: str, name: str, *, maximum: int = 5, measured: bool = True) -> Obj:
    """One custom resource; ``maximum`` above 100 is what the policy refuses."""
    md: Obj = {"name": name}
    if measured:
        md["labels"] = {f"{LABEL}/run": "measured"}
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": md,
            "spec": {"min": 1, "max": maximum, "owner": "bench"}}


def configmap(name: str, measured: bool = True) -> Obj:
    """One small ConfigMap (labelled when it is one of the timed ones)."""
    labels = {f"{LABEL}/run": "measured"} if measured else {}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


async def poll(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait until check() is true, or fail with ``what``."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def serve_crd(client: Client, group: str, *, rule: bool, ns: str) -> None:
    """Create the CRD and wait until its resource answers in ``ns``."""
    await client.resource(CUSTOMRESOURCEDEFINITIONS).create(widget_crd(group, rule=rule))
    rc = client.resource(widget_info(group))

    async def served() -> bool:
        try:
            await rc.list(ns)
        except NotFound:
            return False
        return True
    await poll(f"widgets.{group} to be served", served)


async def setup(client: Client, hooks: WebhookProcess) -> None:
    """Namespaces, both CRDs, the webhook configuration and the policy; each proven active."""
    nss = client.resource(NAMESPACES)
    for key, _ in MODES:
        await nss.create({"metadata": {"name": f"bench-{key}", "labels": {LABEL: key}}})
    await serve_crd(client, PLAIN_GROUP, rule=False, ns="bench-cr")
    await serve_crd(client, CEL_GROUP, rule=True, ns="bench-cel")
    cel = client.resource(widget_info(CEL_GROUP))
    bad = widget(CEL_GROUP, "bad", measured=False)
    bad["spec"]["min"] = 9
    try:
        await cel.create(bad, "bench-cel")
        raise RuntimeError("the CEL rule did not refuse min > max")
    except Invalid:
        pass

    # The webhook and the policy select their mode's namespace only.
    rules = [{"operations": ["CREATE"], "apiGroups": [CEL_GROUP], "apiVersions": ["*"], "resources": ["widgets"]}]
    await client.resource(VALIDATINGWEBHOOKCONFIGURATIONS).create({
        "metadata": {"name": "admission-bench.kubelite.dev"},
        "webhooks": [{"name": "allow.admission-bench.kubelite.dev", "sideEffects": "None",
                      "admissionReviewVersions": ["v1"], "failurePolicy": "Fail", "timeoutSeconds": 10,
                      "clientConfig": {"url": hooks.url(WEBHOOK_PATH), "caBundle": hooks.ca_bundle},
                      "rules": rules, "namespaceSelector": {"matchLabels": {LABEL: "webhook"}}}]})
    await client.resource(VALIDATINGADMISSIONPOLICIES).create({
        "metadata": {"name": "admission-bench.kubelite.dev"},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules},
                 "validations": [{"expression": "object.spec.max <= 100", "message": "max is at most 100"}]}})
    await client.resource(VALIDATINGADMISSIONPOLICYBINDINGS).create({
        "metadata": {"name": "admission-bench.kubelite.dev"},
        "spec": {"policyName": "admission-bench.kubelite.dev", "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {LABEL: "vap"}}}}})

    probes = iter(range(1_000_000))

    async def webhook_called() -> bool:
        name = f"probe-{next(probes)}"
        await cel.create(widget(CEL_GROUP, name, measured=False), "bench-webhook")
        return name in hooks.names("bench-webhook")

    async def policy_denies() -> bool:
        try:
            await cel.create(widget(CEL_GROUP, f"probe-{next(probes)}", maximum=1000, measured=False), "bench-vap")
        except Invalid:
            return True
        return False
    await poll("the webhook to be called", webhook_called)
    await poll("the policy to refuse a bad widget", policy_denies)


async def measure_mode(clients: list[Client], key: str, label: str, creates: int,
                       hooks: WebhookProcess) -> Result:
    """``len(clients)`` tasks, one per client, each making ``creates`` objects in the mode's namespace."""
    ns = f"bench-{key}"
    res = Result(key, label)
    info = CONFIGMAPS if key == "configmap" else widget_info(PLAIN_GROUP if key == "cr" else CEL_GROUP)
    rcs: list[ResourceClient] = [c.resource(info) for c in clients]
    k = len(clients)

    ok = 0

    async def make(name: str, rc: ResourceClient, measured: bool = True) -> bool:
        obj = configmap(name, measured) if key == "configmap" else widget(info.group, name, measured=measured)
        try:
            await rc.create(obj, ns)
        except StatusError:
            res.errors += 1  # warm-up failures count too: they mean the same thing
            return False
        return True

    async def one(i: int) -> None:
        nonlocal ok
        if await make(f"o-{i}", rcs[i % k]):
            ok += 1  # after the await: ``ok += await …`` would read ok before it

    # One untimed create per client first, so no mode pays for opening connections.
    await asyncio.gather(*(make(f"warm-{j}", rc, measured=False) for j, rc in enumerate(rcs)))

    # k tasks (api.py's timed_many) and requests spread round-robin over the k clients:
    # at most k creates in flight, each client with its own connection pool.
    res.wall, res.latencies = await timed_many(creates * k, k, one)
    res.creates = ok
    res.stored = len((await rcs[0].list(ns, label_selector=MEASURED))["items"])
    if key == "webhook":
        res.webhook_reviews = sum(1 for n in hooks.names(ns) if n.startswith("o-"))
    return res


async def measure(cfg: ClientConfig, hooks: WebhookProcess, creates: int, clients: int) -> list[Result]:
    """Set up every mode, then measure them one after the other."""
    admin = Client(cfg)
    pool = [Client(cfg) for _ in range(clients)]
    try:
        await setup(admin, hooks)
        return [await measure_mode(pool, key, label, creates, hooks) for key, label in MODES]
    finally:
        await admin.close()
        for c in pool:
            await c.close()


def run(tmp: Path, creates: int, clients: int) -> list[Result]:
    """Start the server and the webhook, measure every mode, stop both."""
    hooks = WebhookProcess()
    try:
        srv = start_server(tmp, *API_ONLY)
        try:
            return asyncio.run(measure(srv.client_config(), hooks, creates, clients))
        finally:
            srv.stop()
    finally:
        hooks.close()


def table(results: list[Result], clients: int, creates: int) -> Table:
    """The results as a rich table."""
    t = Table(title=f"kubelite admission: creates/s, {clients} clients × {creates} creates", title_justify="left")
    t.add_column("mode")
    for col in ("creates/s", "p50", "p99", "errors"):
        t.add_column(col, justify="right")
    for r in results:
        lat = r.latencies or [0.0]
        t.add_row(r.label, f"{r.rate:.0f}", ms(pct(lat, 50)), ms(pct(lat, 99)), str(r.errors))
    return t


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--clients", type=int, default=8, help="clients, each with its own connection pool")
    ap.add_argument("--creates", type=int, default=250, help="creates per client and mode")
    ap.add_argument("--serve-webhook", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_webhook:
        serve_webhook()
        return
    console = Console()
    console.print(f"{len(MODES)} modes × {args.clients} clients × {args.creates} creates…")
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-admission-") as tmpd:
        results = run(Path(tmpd), args.creates, args.clients)
    console.print(table(results, args.clients, args.creates))
    console.print(f"python {sys.version.split()[0]}; one run over loopback; the webhook runs in a child process",
                  style="grey50")


if __name__ == "__main__":
    main()
