"""The tutorial's `:v10` with automatic rollback on the oci runtime, under load through the NodePort.

Pods are containers in their own network namespaces serving the real bootcamp app; the
Service goes through the kernel data path. Nobody types `kubectl rollout undo`: the
controller rolls back by itself and no request through the NodePort fails meanwhile.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import create_namespace, start_server
from tests.test_services_rollout import Load, answering_pods

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None,
                                reason="the oci runtime needs root and runc")

V1 = "gcr.io/google-samples/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"
V10 = "gcr.io/google-samples/kubernetes-bootcamp:v10"
NAME = "kubernetes-bootcamp"


@pytest.fixture(scope="module")
def oci(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("autorollback-oci")
    srv = start_server(tmp, "--runtime", "oci")
    yield srv
    srv.stop()
    # The containers outlive the server (as with k3s); this is how they are stopped.
    killed = subprocess.run([sys.executable, "-m", "kubelite.cli", "killall", "--data-dir", str(srv.data_dir)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == 0, killed.stderr


def rolled_out(k, ns: str) -> None:
    p = k.kubectl("-n", ns, "rollout", "status", f"deployment/{NAME}", "--timeout=180s", timeout=200)
    assert p.returncode == 0, p.stderr + k.log_tail()


def test_auto_rollback_under_load_through_the_node_port_loses_no_request(oci, request):
    k = oci
    ns = create_namespace(k, request)
    k.kubectl("-n", ns, "create", "deployment", NAME, f"--image={V1}", "--replicas=4", check=True)
    k.kubectl("-n", ns, "annotate", "deployment", NAME, "rollout.kubelite.dev/auto-rollback=true", check=True)
    k.kubectl("-n", ns, "expose", "deployment", NAME, "--type=NodePort", "--port=8080", check=True)
    rolled_out(k, ns)
    k.kubectl("-n", ns, "set", "image", f"deployment/{NAME}", f"{NAME}={V2}", check=True)
    rolled_out(k, ns)
    port = k.kjson("-n", ns, "get", "service", NAME)["spec"]["ports"][0]["nodePort"]
    k.wait_for(lambda: len(answering_pods("127.0.0.1", port, 16)) == 4, timeout=60,
               what="4 pods answering the node port")

    with Load("127.0.0.1", port, clients=4, pause=0.01) as load:
        k.wait_for(lambda: len(load.replies) >= 50, timeout=60, what="load flowing")
        k.kubectl("-n", ns, "set", "image", f"deployment/{NAME}", f"{NAME}={V10}", check=True)
        k.wait_for(lambda: k.kjson("-n", ns, "get", "events", "--field-selector",
                                   f"involvedObject.name={NAME},reason=AutoRollback")["items"], timeout=120,
                   what="the AutoRollback event")
        rolled_out(k, ns)
        end = time.monotonic()
        k.wait_for(lambda: len(load.since(end)) >= 50, timeout=60, what="load after the rollback")

    assert load.failures == [], load.failures[:10]
    assert {v for _, _, v in load.replies} == {2}
    d = k.kjson("-n", ns, "get", "deployment", NAME)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert re.search(r"ErrImagePull|ImagePullBackOff", d["metadata"]["annotations"]["rollout.kubelite.dev/rolled-back-from"])
    assert len(load.replies) >= 100, len(load.replies)

    def only_v2() -> bool:
        live = [p for p in k.kjson("-n", ns, "get", "pods", "-l", f"app={NAME}")["items"]
                if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 4 and all(p["spec"]["containers"][0]["image"] == V2 for p in live)
    k.wait_for(only_v2, timeout=60, what="only v2 pods")
