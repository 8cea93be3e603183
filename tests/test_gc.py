"""Garbage collector against a real API server, driven with the real kubectl.

The collector runs in this test process (a background event loop) as an API client of
a `kubelite server` started with its own controllers disabled.  Deployments here have
no deployment controller behind them: the tests write the ReplicaSets and pods with
their ownerReferences by hand, exactly as the controllers would.
"""
from __future__ import annotations

import asyncio
import json
import threading

import pytest
from conftest import API_ONLY, create_namespace, start_server

from kubelite.api.resources import DEPLOYMENTS, PODS
from kubelite.client.informer import InformerFactory
from kubelite.client.rest import Client
from kubelite.controllers.garbagecollector import DependencyGraph, GarbageCollectorController, gc_resources


class Harness:
    """An event loop in a thread hosting controllers against one server."""

    def __init__(self, server, make_controllers):
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(server, make_controllers), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "controllers did not start"

    def _main(self, server, make_controllers) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve(server, make_controllers))

    async def _serve(self, server, make_controllers) -> None:
        self.client = Client(server.client_config())
        factory = InformerFactory(self.client)
        self.controllers = make_controllers(self.client, factory)
        tasks = [asyncio.create_task(c.run(self.stop)) for c in self.controllers]
        await factory.wait_synced()
        self._ready.set()
        await self.stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        await factory.stop()
        await self.client.close()

    def call(self, coro):
        """Run a coroutine on the controllers' loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def gc_env(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("gc"), *API_ONLY)
    h = Harness(srv, lambda c, f: [GarbageCollectorController(c, f)])
    yield srv, h
    h.close()
    srv.stop()


@pytest.fixture
def env(gc_env, request):
    srv, h = gc_env
    return srv, h, create_namespace(srv, request, "gc")


# -- helpers -----------------------------------------------------------------------------
def apply(srv, ns: str, obj: dict) -> dict:
    p = srv.kubectl("create", "--validate=false", "-n", ns, "-f", "-", "-o", "json", input=json.dumps(obj), check=True)
    return json.loads(p.stdout)


def ref(owner: dict, *, controller: bool = True, block: bool = True) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": block}


def deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def replicaset(name: str, owner: dict) -> dict:
    app = owner["metadata"]["name"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": [ref(owner)]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def pod(name: str, owner: dict | None, **spec) -> dict:
    md: dict = {"name": name, "labels": {"app": "x"}}
    if owner is not None:
        md["ownerReferences"] = [ref(owner)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def names(srv, ns: str, kind: str) -> set[str]:
    out = srv.kjson("get", kind, "-n", ns)
    return {i["metadata"]["name"] for i in out["items"]}


def gone(srv, ns: str, kind: str, name: str) -> bool:
    p = srv.kubectl("get", kind, name, "-n", ns)
    return p.returncode != 0 and "NotFound" in p.stderr


def make_tree(srv, ns: str, name: str) -> tuple[dict, dict, list[dict]]:
    d = apply(srv, ns, deployment(name))
    rs = apply(srv, ns, replicaset(f"{name}-5d4f8b7c9", d))
    pods = [apply(srv, ns, pod(f"{name}-5d4f8b7c9-{s}", rs)) for s in ("abcde", "fghij")]
    return d, rs, pods


# -- pure graph --------------------------------------------------------------------------
def test_graph_tracks_owner_changes_and_blocking_dependents():
    g = DependencyGraph()
    owner = {"kind": "ReplicaSet", "metadata": {"uid": "o", "name": "rs"}}
    dep = {"kind": "Pod", "metadata": {"uid": "d", "name": "p",
                                       "ownerReferences": [{"uid": "o", "blockOwnerDeletion": True}]}}
    other = {"kind": "Pod", "metadata": {"uid": "e", "name": "q", "ownerReferences": [{"uid": "o"}]}}
    g.put(PODS, dep)
    assert {n.obj["metadata"]["uid"] for n in g.dependents_of("o")} == {"d"}  # owner may be absent
    g.put(DEPLOYMENTS, owner)
    g.put(PODS, other)
    assert [n.obj["metadata"]["uid"] for n in g.blocking_dependents("o")] == ["d"]
    before = g.put(PODS, {"kind": "Pod", "metadata": {"uid": "d", "name": "p"}})
    assert before == frozenset({"o"})
    assert [n.obj["metadata"]["uid"] for n in g.dependents_of("o")] == ["e"]
    g.remove("e")
    assert g.dependents_of("o") == [] and "o" not in g.dependents


def test_events_are_not_watched():
    plurals = {(r.group, r.plural) for r in gc_resources()}
    assert ("", "events") not in plurals and ("apps", "replicasets") in plurals and ("", "pods") in plurals


# -- through the API ----------------------------------------------------------------------
def test_should_delete_pods_created_by_rc_when_not_orphaning(env):
    """kubectl delete deployment (background): ReplicaSets and pods follow."""
    srv, _, ns = env
    make_tree(srv, ns, "web")
    srv.kubectl("delete", "deployment", "web", "-n", ns, check=True)
    srv.wait_for(lambda: not names(srv, ns, "replicasets") and not names(srv, ns, "pods"),
                 what="replicaset and pods collected")


def test_should_orphan_pods_created_by_rc_if_delete_options_say_so(env):
    """kubectl delete --cascade=orphan leaves the ReplicaSet, without its ownerReference."""
    srv, _, ns = env
    _, rs, _ = make_tree(srv, ns, "orph")
    srv.kubectl("delete", "deployment", "orph", "-n", ns, "--cascade=orphan", check=True)
    srv.wait_for(lambda: gone(srv, ns, "deployment", "orph"), what="deployment deleted")
    got = srv.kjson("get", "rs", rs["metadata"]["name"], "-n", ns)
    assert not got["metadata"].get("ownerReferences")
    assert names(srv, ns, "pods") == {"orph-5d4f8b7c9-abcde", "orph-5d4f8b7c9-fghij"}
    pods = srv.kjson("get", "pods", "-n", ns)["items"]
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)


def test_should_keep_the_rc_around_until_all_its_pods_are_deleted_if_deleteOptions_says_so(env):
    """--cascade=foreground: the owner waits, with its finalizer, until blocking dependents go."""
    srv, _, ns = env
    d, rs, _ = make_tree(srv, ns, "fg")
    # A pod holding a finalizer keeps the whole chain in the foreground.
    stuck = pod("fg-5d4f8b7c9-stuck", rs)
    stuck["metadata"]["finalizers"] = ["example.com/hold"]
    apply(srv, ns, stuck)
    srv.kubectl("delete", "deployment", "fg", "-n", ns, "--cascade=foreground", "--wait=false", check=True)
    srv.wait_for(lambda: names(srv, ns, "pods") == {"fg-5d4f8b7c9-stuck"}, what="other pods deleted")
    dep = srv.kjson("get", "deployment", "fg", "-n", ns)
    assert dep["metadata"]["deletionTimestamp"] and "foregroundDeletion" in dep["metadata"]["finalizers"]
    rs_now = srv.kjson("get", "rs", rs["metadata"]["name"], "-n", ns)
    assert "foregroundDeletion" in rs_now["metadata"]["finalizers"]
    srv.kubectl("patch", "pod", "fg-5d4f8b7c9-stuck", "-n", ns, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=True)
    srv.wait_for(lambda: gone(srv, ns, "deployment", "fg") and gone(srv, ns, "rs", rs["metadata"]["name"]),
                 what="foreground deletion finished")


def test_kubectl_delete_cascade_foreground_waits(env):
    """kubectl's own wait returns once the owner and its dependents are gone."""
    srv, _, ns = env
    make_tree(srv, ns, "fgw")
    srv.kubectl("delete", "deployment", "fgw", "-n", ns, "--cascade=foreground", check=True)
    assert gone(srv, ns, "deployment", "fgw")
    assert not names(srv, ns, "replicasets") and not names(srv, ns, "pods")


def test_should_not_delete_dependents_that_have_both_valid_owner_and_owner_thats_waiting_for_dependents(env):
    srv, _, ns = env
    a = apply(srv, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner-a"}})
    b = apply(srv, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner-b"}})
    p = pod("shared", None)
    p["metadata"]["ownerReferences"] = [ref(a, controller=False), ref(b, controller=False)]
    apply(srv, ns, p)
    srv.kubectl("delete", "configmap", "owner-a", "-n", ns, "--cascade=foreground", check=True)
    got = srv.kjson("get", "pod", "shared", "-n", ns)
    assert [r["name"] for r in got["metadata"]["ownerReferences"]] == ["owner-b"]
    assert not got["metadata"].get("deletionTimestamp")


def test_dependent_with_only_a_dangling_owner_is_deleted(env):
    """An ownerReference to a uid that never existed (or is gone) makes an orphan to collect."""
    srv, _, ns = env
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-00000000dead"}}
    apply(srv, ns, pod("haunted", ghost))
    keeper = apply(srv, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keeper"}})
    apply(srv, ns, pod("kept", keeper))
    srv.wait_for(lambda: gone(srv, ns, "pod", "haunted"), what="dangling dependent collected")
    assert "kept" in names(srv, ns, "pods")


def test_cluster_scoped_owner_collects_namespaced_dependents(env):
    srv, _, ns = env
    owner_ns = "gc-owner-" + ns[-12:].strip("-")
    srv.kubectl("create", "namespace", owner_ns, check=True)
    owner = srv.kjson("get", "namespace", owner_ns)
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "owned-by-ns", "ownerReferences": [ref(owner, controller=False, block=False)]}}
    apply(srv, ns, cm)
    # Without a namespace controller the namespace stays Terminating; its uid still exists.
    srv.kubectl("delete", "namespace", owner_ns, "--wait=false", check=True)
    assert "owned-by-ns" in names(srv, ns, "configmaps")
    h = env[1]
    h.call(Client.request(h.client, "PUT", f"/api/v1/namespaces/{owner_ns}/finalize",
                          body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": owner_ns},
                                "spec": {"finalizers": []}}))
    srv.wait_for(lambda: gone(srv, ns, "configmap", "owned-by-ns"), what="dependent of a deleted namespace collected")
