"""`kubelite rollout watch`: the step explanation (tables), pod states, and the view against a real cluster."""
from __future__ import annotations

import asyncio
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from conftest import start_server
from rich.console import Console

from kubelite.controllers.deployment import util
from kubelite.ui import rollout
from kubelite.ui.rollout_state import build_state, explain_step, pod_state

DEPLOY_UID = "d-uid"


# --- hand-made objects -----------------------------------------------------------------

def template(image: str) -> dict:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def deployment(image: str = "web:v2", replicas: int = 4, *, surge="25%", unavailable="25%",
               strategy: str = "RollingUpdate", generation: int = 2, observed: int = 2, paused: bool = False,
               progressing_reason: str = "ReplicaSetUpdated", updated: int = 0) -> dict:
    strat: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": DEPLOY_UID, "generation": generation},
        "spec": {"replicas": replicas, "strategy": strat, "paused": paused, "template": template(image),
                 "selector": {"matchLabels": {"app": "web"}}},
        "status": {"observedGeneration": observed, "updatedReplicas": updated,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": progressing_reason,
                                   "message": "m"}]},
    }


def rs(name: str, image: str, revision: int, desired: int, current: int, ready: int, available: int,
       created: str = "2024-01-01T00:00:00Z") -> dict:
    t = template(image)
    t["metadata"]["labels"]["pod-template-hash"] = name
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"web-{name}", "namespace": "default", "uid": f"rs-{name}",
                     "creationTimestamp": created,
                     "annotations": {util.REVISION: str(revision)},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                          "uid": DEPLOY_UID, "controller": True}]},
        "spec": {"replicas": desired, "template": t},
        "status": {"replicas": current, "readyReplicas": ready, "availableReplicas": available},
    }


def pod(name: str, rs_name: str, state: str) -> dict:
    """A pod of ReplicaSet web-<rs_name> in one of the learner-visible states."""
    p: dict = {"metadata": {"name": f"web-{rs_name}-{name}", "namespace": "default",
                            "ownerReferences": [{"kind": "ReplicaSet", "name": f"web-{rs_name}",
                                                 "uid": f"rs-{rs_name}", "controller": True}]},
               "spec": {"nodeName": "node1", "containers": [{"name": "web"}]},
               "status": {"phase": "Running"}}
    st = p["status"]
    if state == "Pending":
        p["spec"].pop("nodeName")
        st["phase"] = "Pending"
    elif state in ("ContainerCreating", "ErrImagePull", "ImagePullBackOff"):
        st["phase"] = "Pending"
        st["containerStatuses"] = [{"name": "web", "ready": False, "restartCount": 0,
                                    "state": {"waiting": {"reason": state}}}]
    elif state == "CrashLoopBackOff":
        st["containerStatuses"] = [{"name": "web", "ready": False, "restartCount": 3,
                                    "state": {"waiting": {"reason": state}}}]
        st["conditions"] = [{"type": "Ready", "status": "False"}]
    elif state in ("Running", "Ready", "Terminating"):
        st["containerStatuses"] = [{"name": "web", "ready": state != "Running", "restartCount": 0,
                                    "state": {"running": {}}}]
        st["conditions"] = [{"type": "Ready", "status": "False" if state == "Running" else "True"}]
        if state == "Terminating":
            p["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z"
    return p


# --- pod states ------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["Pending", "ContainerCreating", "Running", "Ready", "Terminating",
                                   "ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff"])
def test_pod_state_names_what_a_learner_sees(state):
    assert pod_state(pod("a", "new", state)) == state


def test_pod_state_completed_and_failed_phases():
    p = pod("a", "new", "Ready")
    p["status"]["phase"] = "Succeeded"
    assert pod_state(p) == "Completed"
    p["status"]["phase"] = "Failed"
    assert pod_state(p) == "Failed"


# --- explaining the step ---------------------------------------------------------------

OLD, NEW = "old", "new"

STEP_TABLE = [
    # (case, deployment, replicasets, pods, expected sentence)
    ("no deployment", None, [], [], "waiting: the deployment does not exist (yet)"),
    ("spec not observed yet", deployment(generation=3, observed=2), [rs(OLD, "web:v1", 1, 4, 4, 4, 4)], [],
     "waiting for the controller to see the new spec (generation 3, observed 2)"),
    ("paused", deployment(paused=True), [rs(OLD, "web:v1", 1, 4, 4, 4, 4)], [],
     "paused: template changes are not rolled out until `kubectl rollout resume`"),
    ("no new RS yet", deployment(), [rs(OLD, "web:v1", 1, 4, 4, 4, 4)], [],
     "creating a new ReplicaSet for the changed pod template"),
    # rolling.go's first step with 4 replicas at 25%/25%: surge 1 → new RS 1, old RS 3.
    ("new pods being created", deployment(),
     [rs(OLD, "web:v1", 1, 3, 4, 4, 4), rs(NEW, "web:v2", 2, 2, 1, 0, 0, created="2024-01-02T00:00:00Z")],
     [], "scaling up new RS to 2 (maxSurge 1 allows 5 pods)"),
    ("old pods being removed", deployment(),
     [rs(OLD, "web:v1", 1, 3, 4, 4, 4), rs(NEW, "web:v2", 2, 1, 1, 0, 0, created="2024-01-02T00:00:00Z")],
     [], "scaling down old RS web-old to 3 (maxUnavailable 1: at least 3 of 4 must stay available)"),
    ("room to surge", deployment(),
     [rs(OLD, "web:v1", 1, 3, 3, 3, 3), rs(NEW, "web:v2", 2, 1, 1, 1, 1, created="2024-01-02T00:00:00Z")],
     [], "scaling up new RS to 2 (maxSurge 1 allows 5 pods)"),
    ("at the surge ceiling, new pods not ready", deployment(),
     [rs(OLD, "web:v1", 1, 3, 3, 3, 3), rs(NEW, "web:v2", 2, 2, 2, 0, 0, created="2024-01-02T00:00:00Z")],
     [pod("a", NEW, "Running"), pod("b", NEW, "ContainerCreating")],
     "waiting for new pods to become available (maxUnavailable 1: at least 3 of 4 must stay available)"),
    ("new pods available, old still wanted", deployment(),
     [rs(OLD, "web:v1", 1, 3, 3, 3, 3), rs(NEW, "web:v2", 2, 2, 2, 2, 2, created="2024-01-02T00:00:00Z")],
     [], "scaling down old ReplicaSets (3 old pod(s) left; maxUnavailable 1: at least 3 of 4 must stay available)"),
    ("bad image", deployment(image="web:v10"),
     [rs(OLD, "web:v1", 1, 3, 3, 3, 3), rs(NEW, "web:v10", 2, 2, 2, 0, 0, created="2024-01-02T00:00:00Z")],
     [pod("a", NEW, "ErrImagePull"), pod("b", NEW, "ImagePullBackOff")],
     "stuck: new pods cannot pull their image web:v10 (ErrImagePull); old pods keep serving (3 available)"),
    ("bad image, progress deadline passed", deployment(image="web:v10", progressing_reason=util.TIMED_OUT),
     [rs(OLD, "web:v1", 1, 3, 3, 3, 3), rs(NEW, "web:v10", 2, 2, 2, 0, 0, created="2024-01-02T00:00:00Z")],
     [pod("a", NEW, "ImagePullBackOff")],
     "failed (progress deadline exceeded): new pods cannot pull their image web:v10 (ImagePullBackOff); "
     "old pods keep serving (3 available)"),
    ("crashing, nothing old", deployment(replicas=1),
     [rs(NEW, "web:v2", 1, 1, 1, 0, 0)], [pod("a", NEW, "CrashLoopBackOff")],
     "stuck: new pods keep crashing (CrashLoopBackOff); no old pods are serving"),
    ("complete", deployment(updated=4, progressing_reason=util.NEW_RS_AVAILABLE),
     [rs(OLD, "web:v1", 1, 0, 0, 0, 0), rs(NEW, "web:v2", 2, 4, 4, 4, 4, created="2024-01-02T00:00:00Z")],
     [pod(c, NEW, "Ready") for c in "abcd"], "rolled out: 4/4 pods of revision 2 available"),
    ("complete, old pods still stopping", deployment(updated=4),
     [rs(OLD, "web:v1", 1, 0, 0, 0, 0), rs(NEW, "web:v2", 2, 4, 4, 4, 4, created="2024-01-02T00:00:00Z")],
     [pod("z", OLD, "Terminating")], "rolled out: 4/4 pods of revision 2 available; 1 old pod(s) still terminating"),
    ("recreate: old still wanted", deployment(strategy="Recreate"), [rs(OLD, "web:v1", 1, 4, 4, 4, 4)], [],
     "Recreate: scaling old ReplicaSets down to 0 before starting new pods"),
    ("recreate: old pods stopping", deployment(strategy="Recreate"), [rs(OLD, "web:v1", 1, 0, 0, 0, 0)],
     [pod("z", OLD, "Terminating")], "Recreate: waiting for 1 old pod(s) to stop before starting new ones"),
    ("recreate: new pods starting", deployment(strategy="Recreate"),
     [rs(OLD, "web:v1", 1, 0, 0, 0, 0), rs(NEW, "web:v2", 2, 4, 4, 1, 1, created="2024-01-02T00:00:00Z")],
     [], "Recreate: waiting for new pods to become available (1/4)"),
    # 1 replica, maxSurge 0, maxUnavailable 1% rounds to 0: upstream allows 1 unavailable.
    ("zero fenceposts allow one unavailable", deployment(replicas=1, surge=0, unavailable="1%"),
     [rs(OLD, "web:v1", 1, 0, 1, 1, 1), rs(NEW, "web:v2", 2, 0, 0, 0, 0, created="2024-01-02T00:00:00Z")],
     [], "scaling down old RS web-old to 0 (maxUnavailable 1: at least 0 of 1 must stay available)"),
]


@pytest.mark.parametrize("case,d,rss,pods,want", STEP_TABLE, ids=[c[0] for c in STEP_TABLE])
def test_explain_step(case, d, rss, pods, want):
    assert explain_step(d, rss, pods) == want


def test_build_state_ignores_replicasets_of_other_deployments():
    other = rs("x", "web:v2", 5, 1, 1, 1, 1)
    other["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    st = build_state(deployment(), [rs(OLD, "web:v1", 1, 4, 4, 4, 4), other], [pod("a", OLD, "Ready")])
    assert [v.name for v in st.replicasets] == ["web-old"]
    assert st.new is None and len(st.old[0].pods) == 1


def test_render_draws_every_pod_and_the_bar():
    st = build_state(deployment(), [rs(OLD, "web:v1", 1, 3, 3, 3, 3),
                                    rs(NEW, "web:v2", 2, 2, 2, 1, 1, created="2024-01-02T00:00:00Z")],
                     [pod("a", NEW, "Ready"), pod("b", NEW, "Running"), pod("c", OLD, "Ready")])
    con = Console(file=io.StringIO(), width=160, color_system=None)
    con.print(rollout.render(st, [], namespace="default", name="web"))
    out = con.file.getvalue()
    assert "maxSurge 25% → 1 · maxUnavailable 25% → 1" in out
    assert "a Ready" in out and "b Running" in out and "c Ready" in out
    assert "█▒" in out  # new RS: 1 available, 1 created but not ready


def test_parse_target():
    assert rollout.parse_target("deployment/web") == "web"
    assert rollout.parse_target("deploy/web") == "web"
    assert rollout.parse_target("web") == "web"
    with pytest.raises(ValueError):
        rollout.parse_target("service/web")


# --- against a real cluster ------------------------------------------------------------

@pytest.fixture(scope="module")
def full_cluster(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("rollout-ui"))
    yield srv
    srv.stop()


def watch_once(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", "rollout", "watch", *args, "--once",
                           "--kubeconfig", srv.kubeconfig], capture_output=True, text=True, timeout=60)


def deploy_status(srv, name: str) -> dict:
    return srv.kjson("get", "deployment", name).get("status") or {}


def test_once_shows_a_finished_then_a_stuck_rollout(full_cluster):
    srv = full_cluster
    srv.kubectl("create", "deployment", "web", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
                "--replicas=2", check=True)
    srv.wait_for(lambda: deploy_status(srv, "web").get("availableReplicas") == 2, 90, what="2 available")
    p = watch_once(srv, "deployment/web")
    assert p.returncode == 0, p.stderr
    assert "Deployment default/web" in p.stdout
    assert "rolled out: 2/2 pods of revision 1 available" in p.stdout
    assert "maxSurge 25% → 1 · maxUnavailable 25% → 0" in p.stdout
    assert "Scaled up replica set web-" in p.stdout

    srv.kubectl("set", "image", "deployment/web", "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v10",
                check=True)
    srv.wait_for(lambda: "ImagePullBackOff" in srv.kubectl("get", "pods").stdout, 90, what="ImagePullBackOff")
    p = watch_once(srv, "deploy/web", "-n", "default")
    assert p.returncode == 0, p.stderr
    flat = " ".join(p.stdout.split())  # the step line may wrap
    # The pod flips between the two reasons as the agent retries the pull.
    assert re.search(r"stuck: new pods cannot pull their image jocatalin/kubernetes-bootcamp:v10 "
                     r"\((ErrImagePull|ImagePullBackOff)\); old pods keep serving \(2 available\)", flat), flat
    assert re.search(r"\w{5} (ErrImagePull|ImagePullBackOff)", p.stdout.split("Pods", 1)[1])


def test_once_for_a_missing_deployment_fails(full_cluster):
    p = watch_once(full_cluster, "deployment/nope")
    assert p.returncode == 1
    assert "the deployment does not exist" in p.stdout


def test_live_view_follows_a_scale_up(full_cluster):
    srv = full_cluster
    srv.kubectl("create", "deployment", "live", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1", check=True)

    async def scenario() -> str:
        buf = io.StringIO()
        con = Console(file=buf, width=160, force_terminal=True, color_system=None)
        task = asyncio.create_task(rollout.watch(srv.client_config(), "default", "live", once=False, console=con))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        scaled = False
        while "rolled out: 3/3 pods of revision 1 available" not in buf.getvalue():
            assert loop.time() < deadline, buf.getvalue()[-3000:]
            if not scaled and "rolled out: 1/1" in buf.getvalue():
                await asyncio.to_thread(srv.kubectl, "scale", "deployment/live", "--replicas=3", check=True)
                scaled = True
            await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return buf.getvalue()

    out = asyncio.run(scenario())
    assert "Scaled up replica set live-" in out and "to 3 from 1" in out


def test_ctrl_c_ends_the_live_view(full_cluster):
    srv = full_cluster
    srv.kubectl("create", "deployment", "ctrlc", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1", check=True)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli", "rollout", "watch", "deployment/ctrlc",
                             "--kubeconfig", srv.kubeconfig], stdin=follower, stdout=follower, stderr=follower,
                            env=dict(os.environ, COLUMNS="160", LINES="60"))
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Deployment default/ctrlc" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")
            r, _, _ = select.select([leader], [], [], 0.5)
            if r:
                seen += os.read(leader, 65536)
        proc.send_signal(signal.SIGINT)
        end = time.monotonic() + 30
        while time.monotonic() < end:  # keep draining so the child never blocks on a full pty
            r, _, _ = select.select([leader], [], [], 0.5)
            if r:
                try:
                    if not os.read(leader, 65536):
                        break
                except OSError:
                    break
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
