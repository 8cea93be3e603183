"""Deployments driven by the real kubectl 1.33 on a `kubelite server --runtime fake`.

Pods of the fake runtime become Running/Ready shortly after they start and a missing
image (`:v10`) fails to pull exactly as with real processes, so these specs exercise the
controllers, the garbage collector and kubectl's rollout verbs without serving traffic.
Names follow upstream's e2e specs (test/e2e/apps/deployment.go) where one exists.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from kubelite.api.resources import lookup
from kubelite.client.rest import Client
from kubelite.controllers.deployment import util
from tests.conftest import create_namespace, start_server
from tests.invariants import RolloutInvariants

V1 = "jocatalin/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"
V10 = "jocatalin/kubernetes-bootcamp:v10"
CONTAINER = "kubernetes-bootcamp"
HASH = "pod-template-hash"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("deploy-kubectl"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def ns(request, fake):
    return create_namespace(fake, request)


# -- helpers -------------------------------------------------------------------------------

def create(k, ns: str, name: str = "web", image: str = V1, replicas: int = 3) -> None:
    k.kubectl("-n", ns, "create", "deployment", name, f"--image={image}", f"--replicas={replicas}", check=True)


def rolled_out(k, ns: str, name: str = "web") -> str:
    p = k.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=60s", timeout=90)
    assert p.returncode == 0, p.stderr + k.log_tail()
    return p.stdout


def live_pods(k, ns: str, selector: str = "app=web") -> list[dict]:
    return [p for p in k.kjson("-n", ns, "get", "pods", "-l", selector)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def image_of(obj: dict) -> str:
    spec = obj["spec"] if obj.get("kind") == "Pod" else obj["spec"]["template"]["spec"]
    return spec["containers"][0]["image"]


def replicasets(k, ns: str, selector: str = "app=web") -> dict[str, dict]:
    """ReplicaSets by image."""
    return {image_of(rs): rs for rs in k.kjson("-n", ns, "get", "rs", "-l", selector)["items"]}


def sizes(k, ns: str, selector: str = "app=web") -> dict[str, int]:
    return {img: rs["spec"]["replicas"] for img, rs in replicasets(k, ns, selector).items()}


def history(k, ns: str, name: str = "web") -> list[str]:
    out = k.kubectl("-n", ns, "rollout", "history", f"deployment/{name}", check=True).stdout
    return [line.split()[0] for line in out.splitlines()[2:] if line.strip()]


def uids(pods: list[dict]) -> set[str]:
    return {p["metadata"]["uid"] for p in pods}


def all_ready_on(k, ns: str, image: str, n: int) -> bool:
    pods = live_pods(k, ns)
    return len(pods) == n and all(image_of(p) == image for p in pods) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        for p in pods)


# -- deletion and adoption -----------------------------------------------------------------

def test_deployment_deletion_removes_its_replicasets_and_pods(fake, ns):
    k = fake
    create(k, ns)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}", check=True)
    rolled_out(k, ns)
    assert len(replicasets(k, ns)) == 2
    out = k.kubectl("-n", ns, "delete", "deployment", "web", check=True).stdout
    assert out.strip() == 'deployment.apps "web" deleted'
    k.wait_for(lambda: not k.kjson("-n", ns, "get", "rs")["items"], what="ReplicaSets collected")
    k.wait_for(lambda: not k.kjson("-n", ns, "get", "pods")["items"], what="pods collected")


def test_deployment_orphaned_by_cascade_orphan_is_adopted_by_a_new_deployment(fake, ns):
    k = fake
    create(k, ns)
    rolled_out(k, ns)
    before_rs = replicasets(k, ns)[V1]
    before_pods = uids(live_pods(k, ns))
    k.kubectl("-n", ns, "delete", "deployment", "web", "--cascade=orphan", check=True)
    k.wait_for(lambda: not k.kjson("-n", ns, "get", "deployments")["items"], what="deployment gone")

    def orphaned():
        rs = replicasets(k, ns)[V1]
        return not rs["metadata"].get("ownerReferences") and rs
    rs = k.wait_for(orphaned, what="orphaned ReplicaSet")
    assert rs["metadata"]["uid"] == before_rs["metadata"]["uid"] and rs["spec"]["replicas"] == 3
    assert uids(live_pods(k, ns)) == before_pods

    create(k, ns)  # same name, selector and template
    new_uid = k.kjson("-n", ns, "get", "deployment", "web")["metadata"]["uid"]

    def adopted():
        rs = replicasets(k, ns)[V1]
        refs = [r for r in rs["metadata"].get("ownerReferences") or [] if r.get("controller")]
        return refs and refs[0]["uid"] == new_uid
    k.wait_for(adopted, what="ReplicaSet adopted by the new Deployment")
    rolled_out(k, ns)
    assert list(replicasets(k, ns)) == [V1]  # no second ReplicaSet
    assert uids(live_pods(k, ns)) == before_pods  # and no new pods
    assert k.kjson("-n", ns, "get", "deployment", "web")["status"]["availableReplicas"] == 3


def test_should_run_the_lifecycle_of_a_deployment(fake, ns):
    k = fake
    create(k, ns, replicas=1)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "patch", "deployment", "web", "-p", json.dumps(
        {"metadata": {"labels": {"test-deployment": "patched"}},
         "spec": {"template": {"spec": {"containers": [{"name": CONTAINER, "image": V2}]}}}}), check=True)
    rolled_out(k, ns)
    d = k.kjson("-n", ns, "get", "deployment", "web")
    assert d["metadata"]["labels"]["test-deployment"] == "patched" and image_of(d) == V2

    scale = k.kjson("-n", ns, "get", "deployment", "web", "--subresource=scale")
    assert (scale["kind"], scale["spec"]["replicas"], scale["status"]["selector"]) == ("Scale", 1, "app=web")
    k.kubectl("-n", ns, "patch", "deployment", "web", "--subresource=scale", "-p",
              '{"spec":{"replicas":2}}', check=True)
    rolled_out(k, ns)
    assert k.kjson("-n", ns, "get", "deployment", "web")["spec"]["replicas"] == 2

    st = k.kjson("-n", ns, "get", "deployment", "web", "--subresource=status")
    assert st["status"]["readyReplicas"] == 2 and st["status"]["observedGeneration"] == st["metadata"]["generation"]
    cond = {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test"}
    st["status"]["conditions"].append(cond)
    k.kubectl("-n", ns, "replace", "--subresource=status", "-f", "-", input=json.dumps(st), check=True)
    got = k.kjson("-n", ns, "get", "deployment", "web", "--subresource=status")["status"]["conditions"]
    assert {"type": "StatusUpdate", "reason": "E2E"}.items() <= next(c for c in got if c["type"] == "StatusUpdate").items()

    out = k.kubectl("-n", ns, "delete", "deployment", "-l", "test-deployment=patched", check=True).stdout
    assert out.strip() == 'deployment.apps "web" deleted'
    k.wait_for(lambda: not k.kjson("-n", ns, "get", "pods")["items"], what="pods collected")


# -- rollout verbs -------------------------------------------------------------------------

def test_paused_deployment_does_not_roll_out_until_resumed(fake, ns):
    k = fake
    create(k, ns)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}", check=True)
    rolled_out(k, ns)
    v2_pods = uids(live_pods(k, ns))
    assert k.kubectl("-n", ns, "rollout", "pause", "deployment/web", check=True).stdout.strip() == \
        "deployment.apps/web paused"
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V1}", check=True)

    def paused_condition():
        d = k.kjson("-n", ns, "get", "deployment", "web")
        c = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
        return d["status"]["observedGeneration"] == d["metadata"]["generation"] and \
            (c["status"], c["reason"]) == ("Unknown", "DeploymentPaused")
    k.wait_for(paused_condition, what="Progressing=Unknown/DeploymentPaused")
    assert sizes(k, ns) == {V1: 0, V2: 3} and uids(live_pods(k, ns)) == v2_pods

    p = k.kubectl("-n", ns, "rollout", "undo", "deployment/web")
    assert p.returncode == 1
    assert p.stderr.strip() == ("error: you cannot rollback a paused deployment; "
                                "resume it first with 'kubectl rollout resume' and try again")
    p = k.kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=1s")
    assert p.returncode == 1 and p.stderr.strip() == "error: timed out waiting for the condition"

    assert k.kubectl("-n", ns, "rollout", "resume", "deployment/web", check=True).stdout.strip() == \
        "deployment.apps/web resumed"
    rolled_out(k, ns)
    k.wait_for(lambda: all_ready_on(k, ns, V1, 3), what="back on v1")
    assert sizes(k, ns) == {V1: 3, V2: 0} and not uids(live_pods(k, ns)) & v2_pods
    assert history(k, ns) == ["2", "3"]


def test_rollout_restart_replaces_every_pod(fake, ns):
    k = fake
    create(k, ns, replicas=4)
    rolled_out(k, ns)
    before = uids(live_pods(k, ns))
    out = k.kubectl("-n", ns, "rollout", "restart", "deployment/web", check=True).stdout
    assert out.strip() == "deployment.apps/web restarted"
    rolled_out(k, ns)
    k.wait_for(lambda: all_ready_on(k, ns, V1, 4), what="4 ready pods")
    after = live_pods(k, ns)
    assert not uids(after) & before
    d = k.kjson("-n", ns, "get", "deployment", "web")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert len({p["metadata"]["labels"][HASH] for p in after}) == 1
    assert history(k, ns) == ["1", "2"]


def test_rollout_history_and_undo_to_revision(fake, ns):
    k = fake
    create(k, ns, replicas=2)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}", check=True)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V10}", check=True)
    # Annotated after the change, as the docs do: the controller copies it to the new RS only.
    k.kubectl("-n", ns, "annotate", "deployment/web", "kubernetes.io/change-cause=to v10", check=True)
    k.wait_for(lambda: replicasets(k, ns)[V10]["metadata"]["annotations"].get("kubernetes.io/change-cause"),
               what="a v10 ReplicaSet with the change cause")

    out = k.kubectl("-n", ns, "rollout", "history", "deployment/web", check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "deployment.apps/web " and lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert [line.split(None, 1) for line in lines[2:] if line.strip()] == \
        [["1", "<none>"], ["2", "<none>"], ["3", "to v10"]]
    rev2 = k.kubectl("-n", ns, "rollout", "history", "deployment/web", "--revision=2", check=True).stdout
    assert rev2.startswith("deployment.apps/web with revision #2\nPod Template:\n")
    assert f"Image:\t{V2}" in rev2 and f"{HASH}=" in rev2
    p = k.kubectl("-n", ns, "rollout", "history", "deployment/web", "--revision=7")
    assert p.returncode == 1 and p.stderr.strip() == "error: unable to find the specified revision"

    out = k.kubectl("-n", ns, "rollout", "undo", "deployment/web", "--to-revision=1", check=True).stdout
    assert out.strip() == "deployment.apps/web rolled back"
    rolled_out(k, ns)
    k.wait_for(lambda: all_ready_on(k, ns, V1, 2), what="back on v1")
    assert history(k, ns) == ["2", "3", "4"]
    assert sizes(k, ns) == {V1: 2, V2: 0, V10: 0}
    p = k.kubectl("-n", ns, "rollout", "undo", "deployment/web", "--to-revision=9")
    assert p.returncode == 1 and p.stderr.strip() == "error: unable to find specified revision 9 in history"


def test_describe_deployment_shows_replicasets_and_scaling_events(fake, ns):
    k = fake
    create(k, ns, replicas=4)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V10}", check=True)
    # 4 replicas, 25 % → maxSurge 1, maxUnavailable 1: old 3, new 2 (stuck pulling).
    k.wait_for(lambda: sizes(k, ns) == {V1: 3, V10: 2}, what="old 3 / new 2")
    # The ReplicaSets reach their sizes before the Deployment's status counts them: describe
    # only once the controller has written the status that matches them.
    want = {"replicas": 5, "updatedReplicas": 2, "availableReplicas": 3, "unavailableReplicas": 2}
    k.wait_for(lambda: {f: k.kjson("-n", ns, "get", "deployment", "web")["status"].get(f) for f in want} == want,
               what="status 5 total / 2 updated / 3 available")
    rss = replicasets(k, ns)
    old, new = rss[V1]["metadata"]["name"], rss[V10]["metadata"]["name"]
    out = k.kubectl("-n", ns, "describe", "deployment", "web", check=True).stdout
    assert f"OldReplicaSets:  {old} (3/3 replicas created)\n" in out
    assert f"NewReplicaSet:   {new} (2/2 replicas created)\n" in out
    assert "Replicas:               4 desired | 2 updated | 5 total | 3 available | 2 unavailable" in out
    events = [line.split(None, 4) for line in out.split("Events:", 1)[1].splitlines()[3:] if line.strip()]
    msgs = [e[4] for e in events if e[:2] == ["Normal", "ScalingReplicaSet"]]
    assert msgs[0] == f"Scaled up replica set {old} to 4"
    assert f"Scaled up replica set {new} to 1" in msgs and f"Scaled down replica set {old} to 3 from 4" in msgs
    assert f"Scaled up replica set {new} to 2 from 1" in msgs
    assert all(e[3] == "deployment-controller" for e in events if e[1] == "ScalingReplicaSet")


def test_deployment_should_support_proportional_scaling(fake, ns):
    """Upstream's example: 10 replicas, maxSurge 3, maxUnavailable 2, a new image that never
    becomes ready → old 8 / new 5; scaled to 30 the 20 extra replicas (33 allowed − 13) are
    spread by each RS's share of the annotated max-replicas 13: old 8·33/13 ≈ 20, new 5·33/13 ≈ 13."""
    k = fake
    create(k, ns, replicas=10)
    k.kubectl("-n", ns, "patch", "deployment", "web", "-p",
              '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":3,"maxUnavailable":2}}}}', check=True)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V10}", check=True)
    k.wait_for(lambda: sizes(k, ns) == {V1: 8, V10: 5}, what="old 8 / new 5")
    k.wait_for(lambda: k.kjson("-n", ns, "get", "deployment", "web")["status"].get("availableReplicas") == 8,
               what="8 available")
    for rs in replicasets(k, ns).values():
        ann = rs["metadata"]["annotations"]
        assert (ann["deployment.kubernetes.io/desired-replicas"], ann["deployment.kubernetes.io/max-replicas"]) == \
            ("10", "13")

    k.kubectl("-n", ns, "scale", "deployment/web", "--replicas=30", check=True)
    k.wait_for(lambda: sizes(k, ns) == {V1: 20, V10: 13}, what="old 20 / new 13")
    k.wait_for(lambda: k.kjson("-n", ns, "get", "deployment", "web")["status"].get("availableReplicas") == 20,
               what="20 available")
    for rs in replicasets(k, ns).values():
        ann = rs["metadata"]["annotations"]
        assert (ann["deployment.kubernetes.io/desired-replicas"], ann["deployment.kubernetes.io/max-replicas"]) == \
            ("30", "33")
    st = k.kjson("-n", ns, "get", "deployment", "web")["status"]
    assert (st["replicas"], st["updatedReplicas"], st["unavailableReplicas"]) == (33, 13, 13)


# -- invariants on a live watch ------------------------------------------------------------

async def _watch_rollout(k, ns: str, replicas: int) -> tuple[RolloutInvariants, list[str], int]:
    """Roll `web` from v1 to v2 while watching its pods and ReplicaSets through the API."""
    client = Client(k.client_config())
    pods_api = client.resource(lookup("", "v1", "pods"))
    rs_api = client.resource(lookup("apps", "v1", "replicasets"))
    deployments = client.resource(lookup("apps", "v1", "deployments"))
    try:
        d = await deployments.get("web", ns)
        inv = RolloutInvariants(d)
        rs_violations: list[str] = []
        pods: dict[str, dict] = {}
        rss: dict[str, dict] = {}

        def check_rss() -> None:
            total = sum(util.replicas(rs) for rs in rss.values())
            if total > inv.max_pods:
                rs_violations.append(f"ReplicaSets want {total} > {inv.max_pods}")

        async def follow(api, store: dict, on_event) -> None:
            listed = await api.list(ns, label_selector="app=web")
            for o in listed["items"]:
                store[o["metadata"]["uid"]] = o
            on_event()
            async for typ, obj in api.watch(ns, resource_version=listed["metadata"]["resourceVersion"],
                                            label_selector="app=web"):
                if typ == "BOOKMARK":
                    continue
                if typ == "DELETED":
                    store.pop(obj["metadata"]["uid"], None)
                else:
                    store[obj["metadata"]["uid"]] = obj
                on_event()

        watchers = [asyncio.create_task(follow(pods_api, pods, lambda: inv.check(pods.values()))),
                    asyncio.create_task(follow(rs_api, rss, check_rss))]
        await asyncio.sleep(0)
        await asyncio.to_thread(k.kubectl, "-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}",
                                check=True)
        await asyncio.to_thread(rolled_out, k, ns)
        await asyncio.to_thread(k.wait_for, lambda: all_ready_on(k, ns, V2, replicas), what="only v2 pods")
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        return inv, rs_violations, len(rss)
    finally:
        await client.close()


def test_rolling_update_keeps_surge_and_availability_bounds_on_a_live_watch(fake, ns):
    k = fake
    create(k, ns, replicas=10)
    rolled_out(k, ns)
    inv, rs_violations, n_rss = asyncio.run(_watch_rollout(k, ns, 10))
    assert (inv.max_pods, inv.min_available) == (13, 8)  # 25 % of 10: surge rounds up, unavailable down
    assert inv.violations == [] and rs_violations == []
    assert inv.checks > 20 and n_rss == 2


def test_managed_fields_name_the_upstream_components(fake, ns):
    """managedFields name each writer after the component's User-Agent, as on a real cluster:
    `kubectl create` for the Deployment, kube-controller-manager for the ReplicaSet and its
    pods, the kubelet for a pod's status."""
    k = fake
    create(k, ns, replicas=1)
    rolled_out(k, ns)

    def managers(obj: dict) -> set[tuple[str, str, str]]:
        return {(m["manager"], m["operation"], m.get("subresource", ""))
                for m in obj["metadata"].get("managedFields") or []}
    deploy = k.kjson("-n", ns, "get", "deployment", "web", "--show-managed-fields")
    assert ("kubectl-create", "Update", "") in managers(deploy)
    assert ("kube-controller-manager", "Update", "status") in managers(deploy)
    rs = k.kjson("-n", ns, "get", "rs", "-l", "app=web", "--show-managed-fields")["items"][0]
    assert ("kube-controller-manager", "Update", "") in managers(rs)
    pod = k.kjson("-n", ns, "get", "pods", "-l", "app=web", "--show-managed-fields")["items"][0]
    assert ("kube-controller-manager", "Update", "") in managers(pod)
    assert ("kubelet", "Update", "status") in managers(pod)
