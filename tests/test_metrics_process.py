"""The process runtime's usage comes from /proc: a busy and an idle pod as `kubectl top` shows them."""
from __future__ import annotations

import re

from conftest import create_namespace, start_server


def test_kubectl_top_reads_process_usage_from_proc(tmp_path, request):
    srv = start_server(tmp_path, "--runtime", "process", "--metric-resolution", "1")
    try:
        ns = create_namespace(srv, request, "p")
        image = "gcr.io/google-samples/kubernetes-bootcamp:v1"
        srv.kubectl("run", "burn", "-n", ns, f"--image={image}", "--command", "--",
                    "sh", "-c", "while :; do :; done", check=True)
        srv.kubectl("run", "idle", "-n", ns, f"--image={image}", "--command", "--", "sleep", "3600", check=True)

        def usage() -> dict[str, int]:
            p = srv.kubectl("top", "pods", "-n", ns)
            out = {}
            for line in p.stdout.strip().splitlines()[1:] if p.returncode == 0 else []:
                name, cpu, _mem = line.split()
                m = re.fullmatch(r"(\d+)m", cpu)
                out[name] = int(m.group(1)) if m else int(cpu) * 1000
            return out
        srv.wait_for(lambda: len(usage()) == 2 and usage().get("burn", 0) >= 100, timeout=90,
                     what="the busy pod measured")
        u = usage()
        assert u["burn"] >= 100 and u["idle"] <= 20
        srv.kubectl("delete", "pod", "burn", "idle", "-n", ns, "--grace-period=1", check=True)
    finally:
        srv.stop()
