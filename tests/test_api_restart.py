"""Durability: `kill -9` and SIGTERM of `kubelite server`, then a restart on the same data
directory: objects, resourceVersions and watch history survive; new writes go higher."""
from __future__ import annotations

import signal
import subprocess
import threading

import pytest
from conftest import API_ONLY, KUBECTL, start_server
from kubernetes import client, config, watch


def api_for(srv):
    return config.new_client_from_config(config_file=srv.kubeconfig)


def snapshot(srv) -> dict[str, str]:
    """name → resourceVersion of the configmaps and deployments in `default`."""
    out = {}
    for kind in ("configmaps", "deployments"):
        for i in srv.kjson("-n", "default", "get", kind)["items"]:
            out[f'{kind}/{i["metadata"]["name"]}'] = i["metadata"]["resourceVersion"]
    return out


def populate(srv) -> None:
    srv.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=2", check=True)
    srv.kubectl("scale", "deployment", "web", "--replicas=3", check=True)
    for i in range(3):
        srv.kubectl("create", "configmap", f"cm{i}", f"--from-literal=i={i}", check=True)
    srv.kubectl("label", "configmap", "cm1", "x=y", check=True)
    srv.kubectl("delete", "configmap", "cm2", check=True)


def test_kill_9_keeps_objects_and_resource_versions(tmp_path):
    srv = start_server(tmp_path, *API_ONLY)
    try:
        populate(srv)
        before = snapshot(srv)
        dep_before = srv.kjson("get", "deploy", "web")
        list_rv = max(int(v) for v in before.values())
    finally:
        srv.stop(signal.SIGKILL)
    assert srv.proc.returncode == -signal.SIGKILL
    srv2 = start_server(tmp_path, *API_ONLY, data_dir=srv.data_dir, port=srv.port)
    try:
        assert snapshot(srv2) == before
        dep = srv2.kjson("get", "deploy", "web")
        for k in ("uid", "creationTimestamp", "generation", "labels", "resourceVersion"):
            assert dep["metadata"][k] == dep_before["metadata"][k], k
        assert dep["spec"] == dep_before["spec"]
        assert "configmaps/cm2" not in before
        # new writes get higher resourceVersions than anything before the crash
        srv2.kubectl("create", "configmap", "after", check=True)
        rv = int(srv2.kjson("get", "configmap", "after")["metadata"]["resourceVersion"])
        assert rv > list_rv
        core = client.CoreV1Api(api := api_for(srv2))
        assert int(core.list_namespaced_config_map("default").metadata.resource_version) >= rv
        api.close()
        # the bootstrap objects were not duplicated or rewritten
        assert len(srv2.kjson("-n", "default", "get", "svc")["items"]) == 1
    finally:
        assert srv2.stop() == 0


def test_watch_resumes_across_restart_with_event_types(tmp_path):
    """A client that watched before the restart can resume from its last resourceVersion."""
    srv = start_server(tmp_path, *API_ONLY)
    try:
        srv.kubectl("create", "configmap", "a", check=True)
        srv.kubectl("create", "configmap", "b", "--from-literal=k=v", check=True)
        rv = srv.kjson("get", "configmap", "b")["metadata"]["resourceVersion"]
        srv.kubectl("label", "configmap", "a", "sel=yes", check=True)
        srv.kubectl("delete", "configmap", "b", check=True)
        srv.kubectl("create", "configmap", "c", check=True)
        srv.kubectl("label", "configmap", "a", "sel-", check=True)
    finally:
        srv.stop(signal.SIGKILL)
    srv2 = start_server(tmp_path, *API_ONLY, data_dir=srv.data_dir, port=srv.port)
    api = api_for(srv2)
    try:
        core = client.CoreV1Api(api)
        seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1)]
        assert seen == [("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c"), ("MODIFIED", "a")]
        # a selector watch sees `a` enter and leave the selection
        seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, label_selector="sel=yes",
            timeout_seconds=1)]
        assert seen == [("ADDED", "a"), ("DELETED", "a")]
    finally:
        api.close()
        srv2.stop()


def test_sigterm_exits_cleanly_with_open_watch_and_restart_keeps_everything(tmp_path):
    srv = start_server(tmp_path, *API_ONLY)
    populate(srv)
    before = snapshot(srv)
    # an open `kubectl get -w` must not keep the server from stopping
    watcher = subprocess.Popen([KUBECTL, "--kubeconfig", srv.kubeconfig, "get", "configmaps", "-w"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = watcher.stdout.readline()
    assert first.split()[:2] == ["NAME", "DATA"]
    api = api_for(srv)
    stream_done = threading.Event()

    def python_watch():
        try:
            for _ in watch.Watch().stream(client.CoreV1Api(api).list_namespaced_config_map, "default"):
                pass
        except Exception:  # the connection goes away with the server
            pass
        stream_done.set()
    threading.Thread(target=python_watch, daemon=True).start()
    try:
        assert srv.stop(signal.SIGTERM) == 0, srv.log_tail()
    finally:
        watcher.kill()
        watcher.wait()
    assert stream_done.wait(30)
    api.close()
    srv2 = start_server(tmp_path, *API_ONLY, data_dir=srv.data_dir, port=srv.port)
    try:
        assert snapshot(srv2) == before
        srv2.kubectl("scale", "deploy", "web", "--replicas=1", check=True)
        d = srv2.kjson("get", "deploy", "web")
        assert d["spec"]["replicas"] == 1 and d["metadata"]["generation"] == 3
        assert int(d["metadata"]["resourceVersion"]) > max(int(v) for v in before.values())
    finally:
        assert srv2.stop() == 0


def test_second_server_on_same_data_dir_is_refused(tmp_path):
    srv = start_server(tmp_path, *API_ONLY)
    try:
        with pytest.raises(AssertionError, match="already using"):
            start_server(tmp_path, *API_ONLY, data_dir=srv.data_dir)
        srv.kubectl("get", "ns", check=True)
    finally:
        srv.stop()
