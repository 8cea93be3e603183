"""Volumes and env with the default process runtime (host processes, no mount namespace):
every volume is set up as with the oci runtime and appears as a symlink at its mountPath
inside the container's copy of the image; env from ConfigMap, Secret and fieldRef works
the same. The container runs in that copy (`workingDir: /`), so relative paths reach them."""
from __future__ import annotations

import base64

import pytest
from conftest import create_namespace
from nodeharness import apply, get_pod, pod, wait_ready

SA_DIR = "var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture
def kns(request, cluster):
    return create_namespace(cluster, request, "vp")


def test_volumes_appear_inside_the_containers_copy_of_the_image(cluster, kns):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"mode": "fast"}}
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
           "data": {"pw": base64.b64encode(b"hunter2").decode()}}
    p = pod("p", command=["sh", "-c", "sleep 3600"], workingDir="/",
            volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}],
            env=[{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                 {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
            envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            spec={"volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}], "terminationGracePeriodSeconds": 1})
    apply(cluster, kns, cm, sec, p)
    wait_ready(cluster, kns, "p", timeout=60)

    def sh(script: str) -> str:
        return cluster.kubectl("exec", "p", "-n", kns, "--", "sh", "-c", script, check=True).stdout
    assert sh("cat etc/cfg/mode") == "fast"
    assert sh(f"cat {SA_DIR}/namespace") == kns
    assert sh(f"cut -d. -f1 {SA_DIR}/token").strip() != ""
    env = dict(line.split("=", 1) for line in sh("env").splitlines() if "=" in line)
    assert (env["PW"], env["NS"], env["CFG_mode"]) == ("hunter2", kns, "fast")
    cluster.kubectl("patch", "configmap", "cfg", "-n", kns, "-p", '{"data": {"mode": "slow"}}', check=True)
    cluster.wait_for(lambda: sh("cat etc/cfg/mode") == "slow", timeout=60, what="the update in the container")
    assert get_pod(cluster, kns, "p")["status"]["phase"] == "Running"
