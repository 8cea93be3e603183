"""`--runtime auto`, the default: oci where it can run, else process, saying why in the log."""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from conftest import start_server

from kubelite import cli_run
from kubelite.node.runtime.oci import runtime as oci_runtime


def node_runtime(srv) -> str:
    """The node's containerRuntimeVersion once it has registered."""
    def version() -> str:
        nodes = srv.kjson("get", "nodes")["items"]
        return nodes[0]["status"]["nodeInfo"]["containerRuntimeVersion"] if nodes else ""
    return srv.wait_for(version, 30, what="the node to register")


def test_auto_picks_oci_as_root_with_runc_conmon_and_catatonit(tmp_path):
    assert oci_runtime.missing() is None, f"this test needs the oci runtime: {oci_runtime.missing()}"
    srv = start_server(tmp_path, "--runtime", "auto")
    try:
        assert node_runtime(srv).startswith("kubelite-oci://")
        assert "runtime: oci (auto: root, runc, conmon and catatonit are here)" in srv.log_path.read_text()
    finally:
        srv.stop()
        killed = subprocess.run([sys.executable, "-m", "kubelite.cli", "killall", "--data-dir", str(srv.data_dir)],
                                capture_output=True, text=True, timeout=120)
        assert killed.returncode == 0, killed.stderr


def test_auto_with_the_host_network_is_the_process_runtime_and_says_why(tmp_path):
    srv = start_server(tmp_path, "--runtime", "auto", "--network", "host")
    try:
        assert node_runtime(srv).startswith("kubelite-process://")
        log = srv.log_path.read_text()
        assert "runtime: process (auto: --network host was asked for" in log, log
        assert "Containers are host processes" in log, log
    finally:
        srv.stop()


@pytest.mark.parametrize("why", ["the oci runtime needs root",
                                 "the oci runtime needs `conmon` (Debian: apt-get install runc conmon catatonit "
                                 "iproute2)"])
def test_auto_without_what_oci_needs_is_process_with_the_reason(monkeypatch, caplog, why):
    monkeypatch.setattr(oci_runtime, "missing", lambda: why)
    with caplog.at_level(logging.INFO, logger="kubelite.node"):
        assert cli_run.pick_runtime("auto", "auto", "/d") == "process"
    (record,) = [r for r in caplog.records if r.name == "kubelite.node"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"runtime: process (auto: {why}). Containers are host processes")


def test_an_explicit_runtime_is_taken_as_given(monkeypatch):
    monkeypatch.setattr(oci_runtime, "missing", lambda: "the oci runtime needs root")
    assert [cli_run.pick_runtime(r, "auto", "/d") for r in ("oci", "process", "fake")] == ["oci", "process", "fake"]
