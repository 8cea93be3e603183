"""PersistentVolumeClaim volumes in real containers: a `kubelite server --runtime oci`
with the busybox image and server fixture of the volume tests (each module gets its own
server), the default ``local-path`` class, and the real kubectl 1.33.  Data is read
through `kubectl exec` only; no pod address is dialled.
"""
from __future__ import annotations

import os

from test_volumes_oci import apply, ns, pod, sh, srv, wait_running

__all__ = ["ns", "srv"]  # fixtures, shared with the volume tests


def claim(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}}


def with_claim(name: str, claim_name: str, *, read_only: bool = False) -> dict:
    return pod(name, [{"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
               volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim_name, "readOnly": read_only}}])


def test_should_persist_data_across_pods_of_the_same_claim(srv, ns):
    # [sig-storage] PersistentVolumes ... create a PVC and a PV: test write access, then the
    # data outlives the writer and the next pod of the claim reads it.
    apply(srv, ns, claim("data"), with_claim("writer", "data"))
    wait_running(srv, ns, "writer")
    sh(srv, ns, "writer", "echo kept-across-pods > /data/file && sync")
    c = srv.kjson("-n", ns, "get", "pvc", "data")
    assert c["status"]["phase"] == "Bound"
    host_dir = srv.data_dir / "storage" / c["spec"]["volumeName"]
    assert (host_dir / "file").read_text() == "kept-across-pods\n"
    srv.kubectl("-n", ns, "delete", "pod", "writer", check=True)
    apply(srv, ns, with_claim("reader", "data"))
    wait_running(srv, ns, "reader")
    assert sh(srv, ns, "reader", "cat /data/file") == "kept-across-pods\n"
    # Reclaim Delete: once the claim is gone, so are the volume and its directory.
    srv.kubectl("-n", ns, "delete", "pod", "reader", check=True)
    srv.kubectl("-n", ns, "delete", "pvc", "data", check=True)
    srv.wait_for(lambda: not os.path.exists(host_dir), timeout=60, what="the volume's directory removed")
    gone = srv.kubectl("get", "pv", c["spec"]["volumeName"])
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_a_read_only_claim_cannot_be_written(srv, ns):
    apply(srv, ns, claim("ro"), with_claim("first", "ro"))
    wait_running(srv, ns, "first")
    sh(srv, ns, "first", "echo seed > /data/seed")
    apply(srv, ns, with_claim("viewer", "ro", read_only=True))
    wait_running(srv, ns, "viewer")
    assert sh(srv, ns, "viewer", "cat /data/seed") == "seed\n"
    denied = srv.kubectl("-n", ns, "exec", "viewer", "--", "touch", "/data/new")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
