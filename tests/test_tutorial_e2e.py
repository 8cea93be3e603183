"""The six Kubernetes Basics modules, command by command, with the real kubectl 1.33.

One fresh `kubelite server` for the whole file; the tests run in file order and each
module continues from where the previous one left the cluster, as a learner would.
Every command's output is checked against what upstream printed for the same command
(/work/shared/oracle/tutorial-kubectl-1.32, a v1.28 control plane): the same columns
in the same order and alignment, the same describe fields; only names, ages, IPs and
ports may differ.
"""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import KUBECTL, Server, free_port, start_server

ORACLE = Path("/work/shared/oracle/tutorial-kubectl-1.32")
APP = "kubernetes-bootcamp"
POD = r"kubernetes-bootcamp-[a-z0-9]{6,10}-[a-z0-9]{5}"
RS = r"kubernetes-bootcamp-[a-z0-9]{6,10}"
AGE = r"(\d+[smhd]){1,2}"
HELLO = r"Hello Kubernetes bootcamp! \| Running on: (" + POD + r") \| v=(\d+)"


# -- comparing with upstream -------------------------------------------------


def oracle(step: int) -> str:
    """stdout upstream printed at tutorial step `step` (the NN- prefix of the oracle files)."""
    (path,) = ORACLE.glob(f"{step:02d}-*.stdout")
    return path.read_text()


def table(out: str) -> tuple[list[str], list[dict[str, str]]]:
    """Parse kubectl's tabular output; assert every cell starts under its header."""
    lines = out.rstrip("\n").splitlines()
    assert lines, "no output"
    cols = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    rows = []
    for line in lines[1:]:
        row = {}
        for i, (start, name) in enumerate(cols):
            end = cols[i + 1][0] if i + 1 < len(cols) else len(line)
            assert start == 0 or line[start - 1] == " ", f"column {name} misaligned in {line!r}"
            assert line[start:start + 1] not in ("", " "), f"column {name} empty or misaligned in {line!r}"
            row[name] = line[start:end].strip()
        rows.append(row)
    return [name for _, name in cols], rows


def assert_table(out: str, step: int, **patterns: str) -> list[dict[str, str]]:
    """Same header as upstream at `step`; each cell matches its pattern (by column name,
    with '-', '(', ')' and spaces spelt '_' in the keyword)."""
    ours, rows = table(out)
    theirs, _ = table(oracle(step))
    assert ours == theirs, f"columns {ours} != upstream {theirs}"
    for row in rows:
        for col, value in row.items():
            key = re.sub(r"[-() ]", "_", col).strip("_")
            if key in patterns:
                assert re.fullmatch(patterns[key], value), f"{col}={value!r} !~ {patterns[key]!r} in {row}"
    return rows


# kubectl 1.33 prints a projected config map's `optional` as "Optional", 1.32 as
# "ConfigMapOptional"; the v1.33 pod has a PodReadyToStartContainers condition row.
_KEY_RENAMES = {"Optional": "ConfigMapOptional"}


def describe_keys(text: str) -> list[str]:
    """The 'Key:' fields of a kubectl describe, with their indentation, up to Events."""
    keys = []
    for line in text.splitlines():
        m = re.match(r"^( *)([A-Z][A-Za-z0-9 ()./-]*):(\s|$)", line)
        if m:
            key = _KEY_RENAMES.get(m.group(2), m.group(2))
            keys.append(m.group(1) + key)
            if key == "Events":
                break
    return keys


def assert_describe(out: str, step: int) -> dict[str, str]:
    """Same fields, in the same order and nesting, as upstream's describe at `step`
    (the first object when several are described); returns top-level field values."""
    first = lambda s: re.split(r"\n\n\nName:", s)[0]  # noqa: E731
    assert describe_keys(first(out)) == describe_keys(first(oracle(step)))
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Z][\w ]*):[ \t]*(.*)$", first(out), re.M)}


# -- driving the cluster -----------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A fresh whole cluster for the tutorial, on the oci runtime (pods are containers)."""
    tmp = tmp_path_factory.mktemp("tutorial")
    s = start_server(tmp, "--runtime", "oci")
    yield s
    s.stop()
    # The containers outlive the server (as with k3s); this is how they are stopped.
    killed = subprocess.run([sys.executable, "-m", "kubelite.cli", "killall", "--data-dir", str(s.data_dir)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == 0, killed.stderr


@pytest.fixture(scope="module")
def state() -> dict:
    """What the learner exported so far (POD_NAME, NODE_PORT)."""
    return {}


def k(srv: Server, *args: str, ok: bool = True) -> str:
    """kubectl …; stdout (and the command must succeed when ok)."""
    p = srv.kubectl(*args)
    if ok:
        assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
    return p.stdout


def curl(url: str) -> subprocess.CompletedProcess:
    """curl -sS url (loopback only)."""
    return subprocess.run(["curl", "-sS", "--max-time", "5", url], capture_output=True, text=True, timeout=10)


def deployment_is(srv: Server, ready: int, updated: int, available: int, replicas: int | None = None):
    """A wait_for condition on the Deployment's status counters."""
    def cond():
        d = srv.kjson("get", "deployment", APP)
        st = d.get("status", {})
        return (st.get("readyReplicas", 0), st.get("updatedReplicas", 0), st.get("availableReplicas", 0),
                st.get("replicas", 0) if replicas is not None else None) == (ready, updated, available, replicas) \
            and st.get("observedGeneration") == d["metadata"]["generation"]
    return cond


def pod_names(srv: Server, *selector: str) -> list[str]:
    """Names of the app's pods that are not being deleted."""
    items = srv.kjson("get", "pods", *selector)["items"]
    return sorted(p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp"))


def in_pty(srv: Server, args: list[str], lines: list[str], until: str, timeout: float = 20) -> str:
    """Run kubectl with a terminal (as `-ti` needs), type `lines`, read until `until`
    appears in the output (or the process ends); returns everything it printed."""
    master, slave = pty.openpty()
    env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig, TERM="dumb")
    proc = subprocess.Popen([KUBECTL, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        for line in lines:
            os.write(master, line.encode() + b"\r")
        while time.monotonic() < deadline and until.encode() not in out:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: kubectl exited and closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
        return out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            os.write(master, b"exit\r")
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(master)


# -- Module 1: create a cluster ----------------------------------------------


def test_module1_kubectl_version_and_cluster_info(srv):
    out = k(srv, "version")
    assert [line.split(":")[0] for line in out.splitlines()] == \
        [line.split(":")[0] for line in oracle(1).splitlines()]
    assert re.search(r"^Server Version: v1\.\d+\.\d+\S*$", out, re.M), out
    out = k(srv, "cluster-info")
    assert f"Kubernetes control plane is running at https://127.0.0.1:{srv.port}" in out
    assert "kubectl cluster-info dump" in out


def test_module1_get_nodes(srv):
    srv.wait_for(lambda: re.search(r"\sReady\s", k(srv, "get", "nodes")), what="a Ready node")
    rows = assert_table(k(srv, "get", "nodes"), 2, NAME=r"[a-z0-9.-]+", STATUS="Ready", ROLES="<none>",
                        AGE=AGE, VERSION=r"v1\.\d+\.\d+\S*")
    assert len(rows) == 1


# -- Module 2: deploy an app -------------------------------------------------


def test_module2_create_deployment(srv):
    out = k(srv, "create", "deployment", APP, "--image=gcr.io/google-samples/kubernetes-bootcamp:v1")
    assert out == oracle(3)
    # Right away the deployment exists, not yet available (upstream: 0/1 1 0).
    assert_table(k(srv, "get", "deployments"), 4, NAME=APP, READY=r"[01]/1", UP_TO_DATE="[01]",
                 AVAILABLE="[01]", AGE=AGE)
    srv.wait_for(deployment_is(srv, 1, 1, 1), what="1/1 available")
    rows = assert_table(k(srv, "get", "deployments"), 6, NAME=APP, READY="1/1", UP_TO_DATE="1", AVAILABLE="1")
    assert len(rows) == 1


# -- Module 3: explore the app -----------------------------------------------


def test_module3_get_and_describe_pods(srv, state):
    rows = assert_table(k(srv, "get", "pods"), 12, NAME=POD, READY="1/1", STATUS="Running", RESTARTS="0", AGE=AGE)
    assert len(rows) == 1
    out = k(srv, "describe", "pods")
    fields = assert_describe(out, 15)
    assert fields["Status"] == "Running" and fields["Namespace"] == "default"
    assert re.search(r"^    Image: +gcr\.io/google-samples/kubernetes-bootcamp:v1$", out, re.M)
    assert re.search(r"^    State: +Running$", out, re.M) and re.search(r"^    Ready: +True$", out, re.M)
    assert re.search(r"Normal +Started +\S+ +kubelet +Started container kubernetes-bootcamp", out)
    # export POD_NAME="$(kubectl get pods -o go-template --template '{{range .items}}…{{end}}')"
    name = k(srv, "get", "pods", "-o", "go-template", "--template",
             r'{{range .items}}{{.metadata.name}}{{"\n"}}{{end}}').strip()
    assert re.fullmatch(POD, name)
    state["POD_NAME"] = name


def test_module3_kubectl_proxy(srv, state, tmp_path):
    port = free_port()
    env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)
    proxy = subprocess.Popen([KUBECTL, "proxy", f"--port={port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=env)
    try:
        assert proxy.stdout.readline() == f"Starting to serve on 127.0.0.1:{port}\n"
        version = curl(f"http://localhost:{port}/version")
        assert version.returncode == 0 and '"gitVersion"' in version.stdout and '"major": "1"' in version.stdout
        reply = curl(f"http://localhost:{port}/api/v1/namespaces/default/pods/{state['POD_NAME']}:8080/proxy/")
        assert re.fullmatch(HELLO + r"\n", reply.stdout), reply
        assert re.fullmatch(HELLO + r"\n", reply.stdout).group(1) == state["POD_NAME"]
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def test_module3_logs(srv, state):
    out = k(srv, "logs", state["POD_NAME"])
    assert re.search(r"^Kubernetes Bootcamp App Started At: \S+ \| Running On:  " + state["POD_NAME"], out, re.M), out
    # The proxied request of the previous test is in the log.
    assert re.search(r"^Running On: " + state["POD_NAME"] + r" \| Total Requests: \d+ \| App Uptime: ", out, re.M), out


def test_module3_exec_env(srv, state):
    env = dict(line.split("=", 1) for line in k(srv, "exec", state["POD_NAME"], "--", "env").splitlines())
    assert env["HOSTNAME"] == state["POD_NAME"]
    assert env["KUBERNETES_SERVICE_PORT"] == "443" and env["KUBERNETES_SERVICE_HOST"]
    assert env["KUBERNETES_PORT"] == f"tcp://{env['KUBERNETES_SERVICE_HOST']}:443"
    assert "PATH" in env


def test_module3_exec_interactive_bash(srv, state):
    out = in_pty(srv, ["exec", "-ti", state["POD_NAME"], "--", "bash"],
                 ["cat server.js; curl -s http://localhost:8080; echo; echo done-$((6*7))"], until="done-42")
    assert "done-42" in out, out
    assert re.search(r"Hello Kubernetes bootcamp! \| Running on: " + state["POD_NAME"] + r" \| v=1", out), out
    assert "http.createServer" in out, out   # the app's source, as the tutorial shows it


# -- Module 4: expose the app ------------------------------------------------


def test_module4_expose_nodeport(srv, state):
    rows = assert_table(k(srv, "get", "services"), 8, NAME="kubernetes", TYPE="ClusterIP", EXTERNAL_IP="<none>",
                        PORT_S="443/TCP", CLUSTER_IP=r"[0-9.]+")
    assert len(rows) == 1
    assert k(srv, "expose", f"deployment/{APP}", "--type=NodePort", "--port", "8080") == oracle(7)
    rows = assert_table(k(srv, "get", "services"), 8, NAME=f"kubernetes|{APP}", TYPE="ClusterIP|NodePort",
                        CLUSTER_IP=r"[0-9.]+", EXTERNAL_IP="<none>", PORT_S=r"443/TCP|8080:3\d{4}/TCP", AGE=AGE)
    assert [r["NAME"] for r in rows] == ["kubernetes", APP]
    node_port = k(srv, "get", f"services/{APP}", "-o", "go-template={{(index .spec.ports 0).nodePort}}")
    assert re.fullmatch(r"3\d{4}", node_port) and 30000 <= int(node_port) <= 32767
    assert rows[1]["PORT(S)"] == f"8080:{node_port}/TCP"
    state["NODE_PORT"] = node_port
    srv.wait_for(lambda: re.search(r"^Endpoints: +[0-9.]+:8080$", k(srv, "describe", f"services/{APP}"), re.M),
                 what="the service's endpoint")
    fields = assert_describe(k(srv, "describe", f"services/{APP}"), 18)
    assert fields["Type"] == "NodePort" and fields["Selector"] == f"app={APP}"
    assert fields["NodePort"] == f"<unset>  {node_port}/TCP" and fields["TargetPort"] == "8080/TCP"
    srv.wait_for(lambda: curl(f"http://127.0.0.1:{node_port}").returncode == 0, what="the NodePort answering")
    reply = curl(f"http://127.0.0.1:{node_port}")
    assert re.fullmatch(HELLO + r"\n", reply.stdout).group(1) == state["POD_NAME"]


def test_module4_labels(srv, state):
    pod = state["POD_NAME"]
    rows = assert_table(k(srv, "get", "pods", "-l", f"app={APP}"), 20, NAME=pod, READY="1/1", STATUS="Running")
    assert len(rows) == 1
    rows = assert_table(k(srv, "get", "services", "-l", f"app={APP}"), 21, NAME=APP, TYPE="NodePort")
    assert len(rows) == 1
    assert k(srv, "label", "pods", pod, "version=v1") == f"pod/{pod} labeled\n"
    out = k(srv, "describe", "pods", pod)
    assert_describe(out, 16)
    assert re.search(r"^Labels: +app=kubernetes-bootcamp\n +pod-template-hash=[a-z0-9]+\n +version=v1$", out, re.M)
    rows = assert_table(k(srv, "get", "pods", "-l", "version=v1"), 20, NAME=pod)
    assert len(rows) == 1


def test_module4_delete_service(srv, state):
    assert k(srv, "delete", "service", "-l", f"app={APP}") == f'service "{APP}" deleted\n'
    rows = assert_table(k(srv, "get", "services"), 8, NAME="kubernetes")
    assert len(rows) == 1
    # The route is gone (connection refused) …
    srv.wait_for(lambda: curl(f"http://127.0.0.1:{state['NODE_PORT']}").returncode == 7,
                 what="the NodePort to refuse connections")
    # … but the app still runs: ask it from inside the pod.
    out = k(srv, "exec", state["POD_NAME"], "--", "curl", "-s", "http://localhost:8080")
    assert re.fullmatch(HELLO + r"\n", out).group(1) == state["POD_NAME"]


# -- Module 5: scale the app -------------------------------------------------


def test_module5_scale_up(srv, state):
    rows = assert_table(k(srv, "get", "rs"), 14, NAME=RS, DESIRED="1", CURRENT="1", READY="1", AGE=AGE)
    assert len(rows) == 1
    assert k(srv, "scale", f"deployments/{APP}", "--replicas=4") == f"deployment.apps/{APP} scaled\n"
    srv.wait_for(deployment_is(srv, 4, 4, 4, 4), what="4/4 available")
    assert_table(k(srv, "get", "deployments"), 11, NAME=APP, READY="4/4", UP_TO_DATE="4", AVAILABLE="4")
    rows = assert_table(k(srv, "get", "pods", "-o", "wide"), 13, NAME=POD, READY="1/1", STATUS="Running",
                        RESTARTS="0", IP=r"\d+\.\d+\.\d+\.\d+", NOMINATED_NODE="<none>", READINESS_GATES="<none>")
    assert len(rows) == 4 and len({r["IP"] for r in rows}) == 4
    out = k(srv, "describe", f"deployments/{APP}")
    fields = assert_describe(out, 17)
    assert fields["Replicas"] == "4 desired | 4 updated | 4 total | 4 available | 0 unavailable"
    assert re.search(r"Scaled up replica set " + RS + " to 4 from 1", out)


def test_module5_load_balancing(srv, state):
    k(srv, "expose", f"deployment/{APP}", "--type=NodePort", "--port", "8080")
    node_port = k(srv, "get", f"services/{APP}", "-o", "go-template={{(index .spec.ports 0).nodePort}}")
    state["NODE_PORT"] = node_port
    srv.wait_for(lambda: re.search(r"^Endpoints: +([0-9.]+:8080,){3}[0-9.]+:8080 \+ 1 more\.\.\.$|"
                                   r"^Endpoints: +([0-9.]+:8080,){2}[0-9.]+:8080 \+ 1 more\.\.\.$",
                                   k(srv, "describe", f"services/{APP}"), re.M),
                 what="4 endpoints in describe service")
    assert_describe(k(srv, "describe", f"services/{APP}"), 18)
    seen: set[str] = set()
    srv.wait_for(lambda: seen.add(re.fullmatch(HELLO + r"\n", curl(f"http://127.0.0.1:{node_port}").stdout)
                                  .group(1)) or len(seen) >= 2, what="replies from several pods")


def test_module5_scale_down(srv):
    assert k(srv, "scale", f"deployments/{APP}", "--replicas=2") == f"deployment.apps/{APP} scaled\n"
    srv.wait_for(lambda: len(pod_names(srv)) == 2 and deployment_is(srv, 2, 2, 2, 2)(), what="2 pods")
    assert_table(k(srv, "get", "deployments"), 11, NAME=APP, READY="2/2", UP_TO_DATE="2", AVAILABLE="2")
    # Terminated pods leave the list once their processes are gone.
    srv.wait_for(lambda: len(table(k(srv, "get", "pods", "-o", "wide"))[1]) == 2, what="2 pods listed")
    assert_table(k(srv, "get", "pods", "-o", "wide"), 13, NAME=POD, STATUS="Running")


# -- Module 6: update the app ------------------------------------------------


def test_module6_rolling_update(srv, state):
    k(srv, "scale", f"deployments/{APP}", "--replicas=4")
    srv.wait_for(deployment_is(srv, 4, 4, 4, 4), what="4/4 before the update")
    out = k(srv, "set", "image", f"deployments/{APP}", f"{APP}=jocatalin/kubernetes-bootcamp:v2")
    assert out == oracle(23)
    out = k(srv, "rollout", "status", f"deployments/{APP}")
    lines = out.splitlines()
    assert lines[-1] == oracle(26).splitlines()[-1]
    assert all(re.fullmatch(r'Waiting for deployment "kubernetes-bootcamp" rollout to finish: '
                            r"(\d out of 4 new replicas have been updated|\d old replicas are pending termination|"
                            r"\d of 4 updated replicas are available)\.\.\.", line) for line in lines[:-1]), out
    assert_table(k(srv, "get", "deployments"), 24, NAME=APP, READY="4/4", UP_TO_DATE="4", AVAILABLE="4")
    srv.wait_for(lambda: len(pod_names(srv)) == 4 and len(table(k(srv, "get", "pods"))[1]) == 4,
                 what="the old pods gone")
    assert_table(k(srv, "get", "pods"), 27, NAME=POD, READY="1/1", STATUS="Running")
    assert re.findall(r"^    Image: +(\S+)$", k(srv, "describe", "pods"), re.M) == ["jocatalin/kubernetes-bootcamp:v2"] * 4
    reply = curl(f"http://127.0.0.1:{state['NODE_PORT']}")
    assert re.fullmatch(HELLO + r"\n", reply.stdout).group(2) == "2"
    assert_describe(k(srv, "describe", "deployment", APP), 30)


def test_module6_bad_image_and_undo(srv, state):
    out = k(srv, "set", "image", f"deployments/{APP}", f"{APP}=gcr.io/google-samples/kubernetes-bootcamp:v10")
    assert out == oracle(31)
    srv.wait_for(lambda: len(re.findall(r"\s(ErrImagePull|ImagePullBackOff)\s", k(srv, "get", "pods"))) == 2,
                 what="two v10 pods failing to pull")
    srv.wait_for(deployment_is(srv, 3, 2, 3, 5), what="3/4 ready, 2 up-to-date, 3 available")
    assert_table(k(srv, "get", "deployments"), 34, NAME=APP, READY="3/4", UP_TO_DATE="2", AVAILABLE="3")
    rows = assert_table(k(srv, "get", "pods"), 35, NAME=POD, READY="0/1|1/1",
                        STATUS="Running|ErrImagePull|ImagePullBackOff", RESTARTS="0")
    assert sorted(r["READY"] for r in rows) == ["0/1", "0/1", "1/1", "1/1", "1/1"]
    rows = assert_table(k(srv, "get", "rs"), 36, NAME=RS)
    assert sorted((r["DESIRED"], r["CURRENT"], r["READY"]) for r in rows) == \
        [("0", "0", "0"), ("2", "2", "0"), ("3", "3", "3")]
    bad = next(r["NAME"] for r in rows if r["DESIRED"] == "2")
    bad_pod = next(n for n in pod_names(srv) if n.startswith(bad + "-"))
    out = k(srv, "describe", "pods", bad_pod)
    assert_describe(out, 37)
    assert 'Failed to pull image "gcr.io/google-samples/kubernetes-bootcamp:v10"' in out
    status = srv.kubectl("rollout", "status", f"deployments/{APP}", "--timeout=3s")
    assert status.returncode == 1
    assert status.stdout.splitlines()[-1] == oracle(39).splitlines()[-1]  # "… 2 out of 4 new replicas …"
    assert status.stderr == (ORACLE / "39-rollout-status-v10-timeout.stderr").read_text()
    assert k(srv, "rollout", "undo", f"deployments/{APP}") == oracle(41)
    out = k(srv, "rollout", "status", f"deployments/{APP}")
    assert out.splitlines()[-1] == f'deployment "{APP}" successfully rolled out'
    srv.wait_for(lambda: len(table(k(srv, "get", "pods"))[1]) == 4, what="the v10 pods gone")
    rows = assert_table(k(srv, "get", "pods"), 43, NAME=POD, READY="1/1", STATUS="Running", RESTARTS="0")
    assert len(rows) == 4
    assert re.findall(r"^    Image: +(\S+)$", k(srv, "describe", "pods"), re.M) == ["jocatalin/kubernetes-bootcamp:v2"] * 4
    assert_table(k(srv, "get", "deployments"), 45, NAME=APP, READY="4/4", UP_TO_DATE="4", AVAILABLE="4")
    out = k(srv, "rollout", "history", f"deployment/{APP}")
    assert out == oracle(46)
    reply = curl(f"http://127.0.0.1:{state['NODE_PORT']}")
    assert re.fullmatch(HELLO + r"\n", reply.stdout).group(2) == "2"


def test_cleanup(srv):
    out = k(srv, "delete", f"deployments/{APP}", f"services/{APP}")
    assert out == f'deployment.apps "{APP}" deleted\nservice "{APP}" deleted\n'
    srv.wait_for(lambda: pod_names(srv) == [], what="every pod gone")
