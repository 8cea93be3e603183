"""Automatic rollback and fail-fast rollouts on a real `kubelite server --runtime fake`.

The fake runtime fails to pull an image no store has (the tutorial's `:v10`) exactly as
a node does, and crashes a container on `fake.kubelite.dev/exit-code`; everything else
(controllers, node agent status, events) is the real thing, driven by the real kubectl.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import create_namespace, start_server

V1 = "gcr.io/google-samples/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"
V10 = "gcr.io/google-samples/kubernetes-bootcamp:v10"
AUTO = "rollout.kubelite.dev/auto-rollback"
FROM = "rollout.kubelite.dev/rolled-back-from"
IMAGE_PULL = re.compile(r"ErrImagePull|ImagePullBackOff")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("autorollback"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def ns(request, fake):
    return create_namespace(fake, request)


def deploy(k, ns: str, name: str, *, replicas: int = 4, auto: bool = True) -> None:
    """The tutorial's Deployment, rolled out on v1 then v2."""
    k.kubectl("-n", ns, "create", "deployment", name, f"--image={V1}", f"--replicas={replicas}", check=True)
    if auto:
        k.kubectl("-n", ns, "annotate", "deployment", name, f"{AUTO}=true", check=True)
    rolled_out(k, ns, name)
    k.kubectl("-n", ns, "set", "image", f"deployment/{name}", f"kubernetes-bootcamp={V2}", check=True)
    rolled_out(k, ns, name)


def rolled_out(k, ns: str, name: str) -> str:
    p = k.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120)
    assert p.returncode == 0, p.stderr + k.log_tail()
    return p.stdout


def image(obj: dict) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def events(k, ns: str, name: str, reason: str) -> list[str]:
    items = k.kjson("-n", ns, "get", "events", "--field-selector",
                    f"involvedObject.kind=Deployment,involvedObject.name={name},reason={reason}")["items"]
    return [e["message"] for e in items]


def kubelite_status(k, ns: str, name: str, timeout: str = "60s") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", "rollout", "status", f"deployment/{name}", "-n", ns,
                           "--kubeconfig", k.kubeconfig, f"--timeout={timeout}"],
                          capture_output=True, text=True, timeout=120)


def live_images(k, ns: str, name: str) -> list[str]:
    pods = k.kjson("-n", ns, "get", "pods", "-l", f"app={name}")["items"]
    return sorted(p["spec"]["containers"][0]["image"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def test_auto_rollback_tutorial_v10_is_back_on_v2(fake, ns):
    k, name = fake, "kubernetes-bootcamp"
    deploy(k, ns, name)
    k.kubectl("-n", ns, "set", "image", f"deployment/{name}", f"kubernetes-bootcamp={V10}", check=True)
    k.wait_for(lambda: image(k.kjson("-n", ns, "get", "deployment", name)) == V2, timeout=60,
               what="the template back on v2")
    out = rolled_out(k, ns, name)
    assert f'deployment "{name}" successfully rolled out' in out
    k.wait_for(lambda: live_images(k, ns, name) == [V2] * 4, timeout=60, what="only v2 pods")
    d = k.kjson("-n", ns, "get", "deployment", name)
    ann = d["metadata"]["annotations"]
    assert ann[AUTO] == "true" and IMAGE_PULL.search(ann[FROM]) and "(revision 3)" in ann[FROM]
    [msg] = events(k, ns, name, "AutoRollback")
    assert msg.startswith(f'Rolled back deployment "{name}" to revision 2') and IMAGE_PULL.search(msg)
    described = k.kubectl("-n", ns, "describe", "deployment", name, check=True).stdout
    assert re.search(r"Warning\s+AutoRollback\s+.*Rolled back deployment", described)
    assert f"{FROM}: {ann[FROM]}" in described                 # the annotations block
    cond = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"][0]
    assert cond["reason"] == "NewReplicaSetAvailable" and f"Rolled back automatically from {ann[FROM]}." in cond["message"]
    rss = {image(rs): rs for rs in k.kjson("-n", ns, "get", "rs", "-l", f"app={name}")["items"]}
    assert rss[V10]["spec"]["replicas"] == 0 and rss[V2]["spec"]["replicas"] == 4
    assert rss[V2]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    # kubectl's view of history: v10 stays in it as revision 3, v2 is now revision 4.
    hist = k.kubectl("-n", ns, "rollout", "history", f"deployment/{name}", check=True).stdout
    assert [line.split()[0] for line in hist.splitlines()[2:] if line.strip()] == ["1", "3", "4"]
    # And kubelite's rollout status says what happened, non-zero.
    p = kubelite_status(k, ns, name)
    assert p.returncode == 1 and "was rolled back automatically from" in p.stderr and IMAGE_PULL.search(p.stderr)


def test_auto_rollback_crash_loop_back_off(fake, ns):
    k, name = fake, "crashy"
    deploy(k, ns, name, replicas=3)
    patch = {"spec": {"template": {"metadata": {"annotations": {"fake.kubelite.dev/exit-code": "1"}}}}}
    k.kubectl("-n", ns, "patch", "deployment", name, "--type=merge", "-p", json.dumps(patch), check=True)
    k.wait_for(lambda: events(k, ns, name, "AutoRollback"), timeout=90, what="an AutoRollback event")
    [msg] = events(k, ns, name, "AutoRollback")
    assert "CrashLoopBackOff" in msg
    rolled_out(k, ns, name)
    d = k.kjson("-n", ns, "get", "deployment", name)
    assert "annotations" not in d["spec"]["template"]["metadata"] and image(d) == V2


def test_auto_rollback_oom_killed(fake, ns):
    k, name = fake, "oomy"
    deploy(k, ns, name, replicas=2)
    patch = {"spec": {"template": {"metadata": {"annotations": {"fake.kubelite.dev/oom-killed": "true",
                                                                "fake.kubelite.dev/exit-after": "200ms"}}}}}
    k.kubectl("-n", ns, "patch", "deployment", name, "--type=merge", "-p", json.dumps(patch), check=True)
    k.wait_for(lambda: events(k, ns, name, "AutoRollback"), timeout=90, what="an AutoRollback event")
    [msg] = events(k, ns, name, "AutoRollback")
    assert re.search(r'are failing: OOMKilled \(pod oomy-\w+-\w+: container "kubernetes-bootcamp" was OOMKilled '
                     r"\(exit code 137\)\)$", msg), msg
    rolled_out(k, ns, name)
    assert "annotations" not in k.kjson("-n", ns, "get", "deployment", name)["spec"]["template"]["metadata"]


def test_auto_rollback_never_loops_and_a_new_template_rolls_out(fake, ns):
    k, name = fake, "noloop"
    deploy(k, ns, name, replicas=2)
    k.kubectl("-n", ns, "set", "image", f"deployment/{name}", f"kubernetes-bootcamp={V10}", check=True)
    k.wait_for(lambda: events(k, ns, name, "AutoRollback"), timeout=60, what="an AutoRollback event")
    rolled_out(k, ns, name)
    # Make the controller sync again and again (a scale is a new generation it must observe):
    # still one rollback, v10 never scaled up again.
    for n in (3, 2):
        k.kubectl("-n", ns, "scale", f"deployment/{name}", f"--replicas={n}", check=True)
        rolled_out(k, ns, name)
    d = k.kjson("-n", ns, "get", "deployment", name)
    assert image(d) == V2 and d["status"]["observedGeneration"] == d["metadata"]["generation"]
    assert len(events(k, ns, name, "AutoRollback")) == 1
    rss = {image(rs): rs for rs in k.kjson("-n", ns, "get", "rs", "-l", f"app={name}")["items"]}
    assert rss[V10]["spec"]["replicas"] == 0 and rss[V10]["status"].get("replicas", 0) == 0
    # A new template is a new rollout, and the rollback record goes with the old one.
    k.kubectl("-n", ns, "set", "image", f"deployment/{name}", "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v1",
              check=True)
    rolled_out(k, ns, name)
    d = k.kjson("-n", ns, "get", "deployment", name)
    assert image(d) == "jocatalin/kubernetes-bootcamp:v1" and FROM not in d["metadata"]["annotations"]
    assert len(events(k, ns, name, "AutoRollback")) == 1
    p = kubelite_status(k, ns, name)
    assert p.returncode == 0 and f'deployment "{name}" successfully rolled out' in p.stdout


def test_kubelite_rollout_status_fails_fast_on_image_pull_back_off(fake, ns):
    k, name = fake, "failfast"
    deploy(k, ns, name, replicas=2, auto=False)
    k.kubectl("-n", ns, "set", "image", f"deployment/{name}", f"kubernetes-bootcamp={V10}", check=True)
    # Far below the 600 s progress deadline: only the fail-fast condition can end it in time.
    p = kubelite_status(k, ns, name, timeout="20s")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "timed out" not in p.stderr
    assert re.search(rf'error: deployment "{name}" rollout failed: ReplicaSet "{name}-\w+" has failing pods: '
                     r"(ErrImagePull|ImagePullBackOff) \(pod ", p.stderr), p.stderr
    d = k.kjson("-n", ns, "get", "deployment", name)
    cond = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"][0]
    assert (cond["status"], cond["reason"]) == ("False", "NewPodsFailing")
    assert image(d) == V10                                    # no opt-in: nothing rolled back
    described = k.kubectl("-n", ns, "describe", "deployment", name, check=True).stdout
    assert re.search(r"Progressing\s+False\s+NewPodsFailing", described), described
    # kubectl keeps upstream's behaviour: it waits (here until its own timeout), no early error.
    kp = k.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=3s", timeout=60)
    assert kp.returncode == 1 and "timed out waiting for the condition" in kp.stderr, kp.stderr
    assert "Waiting for deployment" in kp.stdout and "progress deadline" not in kp.stderr
