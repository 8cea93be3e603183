"""Real usage on the oci runtime: `kubectl top` reads container cgroups, and an HPA scales a
CPU-burning busybox Deployment up, then down once the load stops (kubectl 1.33)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import create_namespace, start_server
from test_runtime_oci import build_busybox_dir

from kubelite.node.runtime.oci import rootfs
from kubelite.node.runtime.oci.runtime import missing

IMAGE = "busybox-burn:1"
# Burns CPU until /tmp/stop exists, then idles.
BURN = ["sh", "-c", "while [ ! -f /tmp/stop ]; do :; done; exec sleep 3600"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    why = missing()
    assert why is None, f"the oci metrics tests need root, runc, conmon and catatonit: {why}"
    tmp = tmp_path_factory.mktemp("hpaoci")
    data = tmp / "data"
    p = _cli("image", "import", IMAGE, str(build_busybox_dir(tmp / "image")), "--cmd", "sh", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    server = start_server(tmp, "--runtime", "oci", "--metric-resolution", "2",
                          "--horizontal-pod-autoscaler-sync-period", "2", data_dir=data)
    try:
        yield server
    finally:
        server.stop()
        killed = _cli("killall", "--data-dir", str(data))
        assert killed.returncode == 0, killed.stderr
        assert rootfs.mounts_below(str(data)) == []


def _deployment(name: str, command: list[str], replicas: int = 1) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                  "name": "main", "image": IMAGE, "imagePullPolicy": "Never", "command": command,
                                  "resources": {"requests": {"cpu": "100m", "memory": "16Mi"},
                                                "limits": {"cpu": "300m", "memory": "64Mi"}}}]}}}})


def _top(srv, ns: str) -> dict[str, tuple[int, str]]:
    p = srv.kubectl("top", "pods", "-n", ns)
    if p.returncode != 0:
        return {}
    out = {}
    for line in p.stdout.strip().splitlines()[1:]:
        name, cpu, mem = line.split()
        m = re.fullmatch(r"(\d+)m", cpu)
        out[name] = (int(m.group(1)) if m else int(cpu) * 1000, mem)
    return out


def test_kubectl_top_reads_container_cgroups(srv, request):
    ns = create_namespace(srv, request, "m")
    srv.kubectl("apply", "-n", ns, "-f", "-", input=_deployment("burn", BURN), check=True)
    srv.kubectl("apply", "-n", ns, "-f", "-", input=_deployment("idle", ["sleep", "3600"]), check=True)

    def both() -> bool:
        t = _top(srv, ns)
        return len(t) == 2 and any(n.startswith("burn-") and c >= 150 for n, (c, _) in t.items())
    srv.wait_for(both, timeout=120, what="both pods in kubectl top, the burner busy")
    t = _top(srv, ns)
    busy = next(v for n, v in t.items() if n.startswith("burn-"))
    idle = next(v for n, v in t.items() if n.startswith("idle-"))
    assert 150 <= busy[0] <= 350  # the 300m CFS limit caps it
    assert idle[0] <= 20
    assert re.fullmatch(r"\d+(Ki|Mi)", busy[1]), busy
    out = srv.kubectl("top", "nodes", check=True).stdout.splitlines()
    assert out[0].split()[:2] == ["NAME", "CPU(cores)"] and len(out) == 2
    srv.kubectl("delete", "namespace", ns, "--wait=false", check=True)


def test_hpa_scales_a_cpu_burning_deployment_up_and_down(srv, request):
    ns = create_namespace(srv, request, "m")
    srv.kubectl("apply", "-n", ns, "-f", "-", input=_deployment("web", BURN), check=True)
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 3,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 50}}}],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}}
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(hpa), check=True)

    def replicas() -> int:
        return int(srv.kjson("get", "deployment", "web", "-n", ns)["spec"]["replicas"])
    srv.wait_for(lambda: replicas() == 3, timeout=180, what="scale up to 3")
    srv.wait_for(lambda: len(_top(srv, ns)) == 3, timeout=120, what="three pods measured")
    # Stop the load in every pod; the autoscaler brings the Deployment back to one.
    pods = srv.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "name", check=True).stdout.split()
    for p in pods:
        srv.kubectl("exec", "-n", ns, p, "--", "touch", "/tmp/stop", check=True)
    srv.wait_for(lambda: replicas() == 1, timeout=180, what="scale down to 1")
    events = srv.kubectl("get", "events", "-n", ns, "--field-selector", "reason=SuccessfulRescale",
                         "-o", "jsonpath={.items[*].message}", check=True).stdout
    assert "reason: All metrics below target" in events
    srv.kubectl("delete", "namespace", ns, "--wait=false", check=True)
