"""The real kubectl (1.33, protobuf bodies; 1.28, JSON) against `kubelite server` (API only).

Outputs are compared with what a real v1.28 control plane printed (../oracle): column
headers, the shape of rows, defaults in `-o yaml`, and kubectl's own messages.
"""
from __future__ import annotations

import json
import os
import queue
import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from conftest import KUBECTL, KUBECTL_OLD

ORACLE = Path("/work/shared/oracle")



BOTH = pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["1.33", "1.28"])


def header(out: str) -> list[str]:
    """The column names of kubectl's table output."""
    return re.split(r"\s{2,}", out.splitlines()[0].strip())


def rows(out: str) -> list[list[str]]:
    """The data rows of kubectl's table output, split into cells."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()[1:] if line.strip()]


def create_deploy(srv, ns: str, name: str = "web", image: str = "nginx:1.25", replicas: int = 1,
                  binary: str = KUBECTL) -> None:
    srv.kubectl("-n", ns, "create", "deployment", name, f"--image={image}", f"--replicas={replicas}",
                binary=binary, check=True)


# -- version, cluster-info, api-resources --------------------------------------------------
@BOTH
def test_version_reports_client_and_server(api_server, binary):
    p = api_server.kubectl("version", binary=binary, check=True)
    assert re.search(r"^Client Version: v1\.\d+\.\d+", p.stdout, re.M)
    assert re.search(r"^Server Version: v1\.\d+\.\d+", p.stdout, re.M)
    v = json.loads(api_server.kubectl("version", "-o", "json", binary=binary, check=True).stdout)
    for k in ("major", "minor", "gitVersion", "platform", "goVersion"):
        assert v["serverVersion"][k], k


@BOTH
def test_cluster_info_names_the_control_plane(api_server, binary):
    p = api_server.kubectl("cluster-info", binary=binary, check=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)  # 1.28 colours its output
    assert f"Kubernetes control plane is running at {api_server.url}" in plain


def _upstream_resources() -> dict[tuple[str, str], dict]:
    """(groupVersion, resource) → upstream v1.28 aggregated discovery entry."""
    out = {}
    for f, core in (("discovery-api-aggregated.json", True), ("discovery-apis-aggregated.json", False)):
        doc = json.loads((ORACLE / "api-samples" / f).read_text())
        for g in doc["items"]:
            for v in g["versions"]:
                gv = v["version"] if core else f'{g["metadata"]["name"]}/{v["version"]}'
                for r in v["resources"]:
                    out[(gv, r["resource"])] = r
    return out


_ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Served by kubelite, absent from the recorded v1.28 control plane: kinds that went GA later
# (ValidatingAdmissionPolicy: v1 in 1.30) and metrics-server's API, as upstream lists them.
_NEWER: dict[tuple[str, str], dict] = {
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies"): {
        "scope": "Cluster", "responseKind": {"kind": "ValidatingAdmissionPolicy"}, "verbs": _ALL_VERBS,
        "categories": ["api-extensions"]},
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings"): {
        "scope": "Cluster", "responseKind": {"kind": "ValidatingAdmissionPolicyBinding"}, "verbs": _ALL_VERBS,
        "categories": ["api-extensions"]},
    ("metrics.k8s.io/v1beta1", "nodes"): {"scope": "Cluster", "responseKind": {"kind": "NodeMetrics"},
                                          "verbs": ["get", "list"]},
    ("metrics.k8s.io/v1beta1", "pods"): {"scope": "Namespaced", "responseKind": {"kind": "PodMetrics"},
                                         "verbs": ["get", "list"]},
}


@BOTH
def test_api_resources_columns_and_rows_match_upstream(api_server, binary):
    p = api_server.kubectl("api-resources", "-o", "wide", binary=binary, check=True)
    assert header(p.stdout) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    upstream = _upstream_resources() | _NEWER
    lines = p.stdout.splitlines()
    cols = [lines[0].index(h) for h in header(p.stdout)]
    seen = set()
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(cols, [*cols[1:], len(line) + 1], strict=True)]
        name, short, gv, namespaced, kind, verbs, cats = cells
        seen.add((gv, name))
        up = upstream.get((gv, name))
        assert up is not None, f"{gv} {name} is not an upstream v1.28 resource"
        assert short == ",".join(up.get("shortNames") or []), name
        assert namespaced == ("true" if up["scope"] == "Namespaced" else "false"), name
        assert kind == up["responseKind"]["kind"], name
        assert verbs == ",".join(sorted(up["verbs"])), name
        # we may leave unimplemented resources out of `all`, never add to it
        assert set(filter(None, cats.split(","))) <= set(up.get("categories") or []), name
    for must in [("v1", "pods"), ("v1", "services"), ("apps/v1", "deployments"), ("apps/v1", "replicasets"),
                 ("v1", "namespaces"), ("v1", "configmaps"), ("v1", "events")]:
        assert must in seen


def test_api_resources_namespaced_filter_and_name_output(api_server):
    p = api_server.kubectl("api-resources", "--namespaced=false", "-o", "name", check=True)
    names = p.stdout.split()
    assert "namespaces" in names and "nodes" in names and "pods" not in names
    p = api_server.kubectl("api-resources", "--api-group=apps", check=True)
    assert {r[0] for r in rows(p.stdout)} >= {"deployments", "replicasets"}


# -- create / get in every output format --------------------------------------------------
@BOTH
def test_create_deployment_then_get_table(api_server, ns, binary):
    create_deploy(api_server, ns, binary=binary)
    p = api_server.kubectl("-n", ns, "get", "deployments", binary=binary, check=True)
    oracle = (ORACLE / "tutorial-kubectl-1.32/04-get-deployments-immediately.stdout").read_text()
    assert header(p.stdout) == header(oracle)
    [row] = rows(p.stdout)
    assert row[:4] == ["web", "0/1", "0", "0"]
    assert re.fullmatch(r"\d+s", row[4])


def test_get_wide_shows_containers_images_selector(api_server, ns):
    create_deploy(api_server, ns)
    p = api_server.kubectl("-n", ns, "get", "deploy", "-o", "wide", check=True)
    assert header(p.stdout) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    [row] = rows(p.stdout)
    assert row[5:] == ["nginx", "nginx:1.25", "app=web"]


def test_get_show_labels_and_label_columns(api_server, ns):
    create_deploy(api_server, ns)
    p = api_server.kubectl("-n", ns, "get", "deploy", "--show-labels", check=True)
    assert header(p.stdout)[-1] == "LABELS" and rows(p.stdout)[0][-1] == "app=web"
    p = api_server.kubectl("-n", ns, "get", "deploy", "-L", "app", check=True)
    assert header(p.stdout)[-1] == "APP" and rows(p.stdout)[0][-1] == "web"


def test_get_all_namespaces_has_namespace_column(api_server, ns):
    create_deploy(api_server, ns)
    p = api_server.kubectl("get", "deploy", "-A", check=True)
    assert header(p.stdout)[0] == "NAMESPACE"
    assert [ns, "web"] in [r[:2] for r in rows(p.stdout)]


def test_get_yaml_shows_upstream_deployment_defaults(api_server, ns):
    create_deploy(api_server, ns)
    got = yaml.safe_load(api_server.kubectl("-n", ns, "get", "deploy", "web", "-o", "yaml", check=True).stdout)
    want = yaml.safe_load((ORACLE / "tutorial-kubectl-1.32/49-get-deploy-yaml.stdout").read_text())
    # Defaults: the spec has exactly upstream's keys, with upstream's default values.
    assert set(got["spec"]) == set(want["spec"])
    for k in ("progressDeadlineSeconds", "revisionHistoryLimit", "strategy"):
        assert got["spec"][k] == want["spec"][k], k
    gts, wts = got["spec"]["template"]["spec"], want["spec"]["template"]["spec"]
    assert {k: v for k, v in gts.items() if k != "containers"} == {k: v for k, v in wts.items() if k != "containers"}
    gc, wc = gts["containers"][0], wts["containers"][0]
    assert set(gc) == set(wc)
    for k in ("imagePullPolicy", "resources", "terminationMessagePath", "terminationMessagePolicy"):
        assert gc[k] == wc[k], k
    md = got["metadata"]
    assert md["generation"] == 1 and md["namespace"] == ns
    assert re.fullmatch(r"\d+", md["resourceVersion"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", md["creationTimestamp"])
    assert re.fullmatch(r"[0-9a-f-]{36}", md["uid"])


@BOTH
def test_get_json_name_jsonpath_go_template(api_server, ns, binary):
    create_deploy(api_server, ns, replicas=2, binary=binary)
    k = lambda *a: api_server.kubectl("-n", ns, *a, binary=binary, check=True).stdout  # noqa: E731
    obj = json.loads(k("get", "deploy", "web", "-o", "json"))
    assert obj["kind"] == "Deployment" and obj["apiVersion"] == "apps/v1"
    lst = json.loads(k("get", "deploy", "-o", "json"))
    assert lst["kind"] == "List" and [i["metadata"]["name"] for i in lst["items"]] == ["web"]
    assert k("get", "deploy", "-o", "name") == "deployment.apps/web\n"
    assert k("get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}") \
        == "2 nginx:1.25"
    assert k("get", "deploy", "-o", "go-template={{range .items}}{{.metadata.name}}:{{.spec.replicas}} {{end}}") \
        == "web:2 "
    assert k("get", "deploy", "-o", "custom-columns=N:.metadata.name,R:.spec.replicas") == "N     R\nweb   2\n"


def test_get_missing_object_and_ignore_not_found(api_server, ns):
    p = api_server.kubectl("-n", ns, "get", "deploy", "nothere")
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): deployments.apps "nothere" not found'
    p = api_server.kubectl("-n", ns, "get", "pod", "nothere")
    assert p.stderr.strip() == 'Error from server (NotFound): pods "nothere" not found'
    p = api_server.kubectl("-n", ns, "get", "deploy", "nothere", "--ignore-not-found", check=True)
    assert p.stdout == ""
    p = api_server.kubectl("-n", ns, "get", "deploy", check=True)
    assert p.stdout == "" and p.stderr.strip() == f"No resources found in {ns} namespace."


def test_get_all_lists_every_category_member(api_server, ns):
    create_deploy(api_server, ns)
    api_server.kubectl("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080", check=True)
    p = api_server.kubectl("-n", ns, "get", "all", check=True)
    assert "error" not in p.stderr.lower()
    assert "service/web" in p.stdout and "deployment.apps/web" in p.stdout


# -- label / annotate / scale / set image / generation ------------------------------------
@BOTH
def test_label_annotate_scale_set_image_and_generation(api_server, ns, binary):
    create_deploy(api_server, ns, binary=binary)
    k = lambda *a: api_server.kubectl("-n", ns, *a, binary=binary, check=True).stdout  # noqa: E731
    gen = lambda: api_server.kjson("-n", ns, "get", "deploy", "web", binary=binary)["metadata"]["generation"]  # noqa: E731
    assert gen() == 1
    assert k("label", "deploy", "web", "tier=front") == "deployment.apps/web labeled\n"
    assert gen() == 1, "a label change is not a spec change"
    assert k("annotate", "deploy", "web", "note=hi") == "deployment.apps/web annotated\n"
    assert gen() == 2, "deployment annotations move generation (they are copied to ReplicaSets)"
    assert k("scale", "deploy", "web", "--replicas=3") == "deployment.apps/web scaled\n"
    assert gen() == 3
    assert k("set", "image", "deploy/web", "nginx=nginx:1.26") == "deployment.apps/web image updated\n"
    d = api_server.kjson("-n", ns, "get", "deploy", "web", binary=binary)
    assert d["metadata"]["generation"] == 4
    assert d["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert d["metadata"]["annotations"]["note"] == "hi"
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert k("label", "deploy", "web", "tier-") == "deployment.apps/web unlabeled\n"
    assert "tier" not in api_server.kjson("-n", ns, "get", "deploy", "web")["metadata"]["labels"]
    # Same image again: no change, no new generation
    k("set", "image", "deploy/web", "nginx=nginx:1.26")
    assert gen() == 4


def test_label_without_overwrite_is_refused(api_server, ns):
    create_deploy(api_server, ns)
    p = api_server.kubectl("-n", ns, "label", "deploy", "web", "app=other")
    assert p.returncode != 0
    assert "'app' already has a value (web), and --overwrite is false" in p.stderr


# -- describe ------------------------------------------------------------------------------
def test_describe_deployment(api_server, ns):
    create_deploy(api_server, ns, replicas=2)
    p = api_server.kubectl("-n", ns, "describe", "deploy", "web", check=True)
    out = p.stdout
    assert re.search(r"^Name:\s+web$", out, re.M)
    assert re.search(rf"^Namespace:\s+{ns}$", out, re.M)
    assert re.search(r"^Selector:\s+app=web$", out, re.M)
    assert re.search(r"^Replicas:\s+2 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable$", out, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", out, re.M)
    assert re.search(r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$", out, re.M)
    assert re.search(r"^\s+Image:\s+nginx:1.25$", out, re.M)


def test_describe_service_both_versions(api_server, ns):
    api_server.kubectl("-n", ns, "create", "service", "nodeport", "web", "--tcp=80:8080", check=True)
    for binary in (KUBECTL, KUBECTL_OLD):
        out = api_server.kubectl("-n", ns, "describe", "svc", "web", binary=binary, check=True).stdout
        assert re.search(r"^Type:\s+NodePort$", out, re.M), out
        assert re.search(r"^Port:\s+80-8080\s+80/TCP$", out, re.M), out
        assert re.search(r"^TargetPort:\s+8080/TCP$", out, re.M), out
        assert re.search(r"^NodePort:\s+80-8080\s+3\d{4}/TCP$", out, re.M), out


# -- delete --------------------------------------------------------------------------------
@BOTH
def test_delete_waits_and_object_is_gone(api_server, ns, binary):
    create_deploy(api_server, ns, binary=binary)
    p = api_server.kubectl("-n", ns, "delete", "deploy", "web", binary=binary, check=True, timeout=30)
    assert p.stdout == 'deployment.apps "web" deleted\n'
    p = api_server.kubectl("-n", ns, "get", "deploy", "web")
    assert "NotFound" in p.stderr
    p = api_server.kubectl("-n", ns, "delete", "deploy", "web")
    assert p.stderr.strip() == 'Error from server (NotFound): deployments.apps "web" not found'


def test_delete_by_label_selector(api_server, ns):
    for n in ("a", "b", "c"):
        api_server.kubectl("-n", ns, "create", "configmap", n, check=True)
    api_server.kubectl("-n", ns, "label", "cm", "a", "b", "gone=yes", check=True)
    p = api_server.kubectl("-n", ns, "delete", "cm", "-l", "gone=yes", check=True)
    assert sorted(p.stdout.splitlines()) == ['configmap "a" deleted', 'configmap "b" deleted']
    assert api_server.kubectl("-n", ns, "get", "cm", "-o", "name", check=True).stdout == "configmap/c\n"


# -- get -w --------------------------------------------------------------------------------
class Watcher:
    """`kubectl get -w` in a subprocess; lines are collected by a thread."""

    def __init__(self, srv, *args: str, binary: str = KUBECTL):
        env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)
        self.proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float = 20) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no line from kubectl get -w; stderr: {self.proc.stderr.read()}") from None

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read()


@BOTH
def test_get_watch_prints_changes(api_server, ns, binary):
    create_deploy(api_server, ns, binary=binary)
    w = Watcher(api_server, "-n", ns, "get", "deploy", "-w", binary=binary)
    try:
        assert header(w.next_line()) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        assert w.next_line().split()[:2] == ["web", "0/1"]
        api_server.kubectl("-n", ns, "scale", "deploy", "web", "--replicas=3", check=True)
        assert w.next_line().split()[:2] == ["web", "0/3"]
        create_deploy(api_server, ns, name="api")
        assert w.next_line().split()[:2] == ["api", "0/1"]
    finally:
        err = w.stop()
    assert "error" not in err.lower(), err


def test_get_watch_output_watch_events_and_delete(api_server, ns):
    api_server.kubectl("-n", ns, "create", "configmap", "one", "--from-literal=a=1", check=True)
    w = Watcher(api_server, "-n", ns, "get", "cm", "-w", "--output-watch-events")
    try:
        assert header(w.next_line()) == ["EVENT", "NAME", "DATA", "AGE"]
        assert w.next_line().split()[:3] == ["ADDED", "one", "1"]
        api_server.kubectl("-n", ns, "patch", "cm", "one", "-p", '{"data":{"b":"2"}}', check=True)
        assert w.next_line().split()[:3] == ["MODIFIED", "one", "2"]
        api_server.kubectl("-n", ns, "delete", "cm", "one", check=True)
        assert w.next_line().split()[:2] == ["DELETED", "one"]
    finally:
        w.stop()


def test_get_single_object_watch_yaml(api_server, ns):
    """`get NAME -w -o name` relies on RV=0 replaying the object as ADDED."""
    api_server.kubectl("-n", ns, "create", "configmap", "one", check=True)
    w = Watcher(api_server, "-n", ns, "get", "cm", "one", "-w", "-o", "jsonpath={.metadata.name}={.data.k}{\"\\n\"}")
    try:
        assert w.next_line() == "one="
        api_server.kubectl("-n", ns, "patch", "cm", "one", "-p", '{"data":{"k":"v"}}', check=True)
        assert w.next_line() == "one=v"
    finally:
        w.stop()


# -- edit / apply --------------------------------------------------------------------------
def _editor(tmp_path: Path, sed_expr: str) -> str:
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\nsed -i '{sed_expr}' \"$1\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@BOTH
def test_edit_with_kube_editor(api_server, ns, tmp_path, binary):
    create_deploy(api_server, ns, binary=binary)
    env = {"KUBE_EDITOR": _editor(tmp_path, "s/replicas: 1$/replicas: 4/")}
    p = api_server.kubectl("-n", ns, "edit", "deploy", "web", "--validate=false", env=env, binary=binary, check=True)
    assert p.stdout.strip() == "deployment.apps/web edited"
    d = api_server.kjson("-n", ns, "get", "deploy", "web")
    assert d["spec"]["replicas"] == 4 and d["metadata"]["generation"] == 2
    # no change in the editor → nothing written
    rv = d["metadata"]["resourceVersion"]
    env = {"KUBE_EDITOR": _editor(tmp_path, "s/nothing-matches-this//")}
    p = api_server.kubectl("-n", ns, "edit", "deploy", "web", "--validate=false", env=env, binary=binary, check=True)
    assert "Edit cancelled, no changes made." in p.stderr + p.stdout
    assert api_server.kjson("-n", ns, "get", "deploy", "web")["metadata"]["resourceVersion"] == rv


def test_edit_validates_with_openapi(api_server, ns, tmp_path):
    """Plain `kubectl edit` validates the edited object against the server's OpenAPI."""
    create_deploy(api_server, ns)
    env = {"KUBE_EDITOR": _editor(tmp_path, "s/replicas: 1$/replicas: 2/")}
    p = api_server.kubectl("-n", ns, "edit", "deploy", "web", env=env)
    assert p.returncode == 0, p.stderr
    assert api_server.kjson("-n", ns, "get", "deploy", "web")["spec"]["replicas"] == 2


def test_edit_to_invalid_object_reopens_with_causes(api_server, ns, tmp_path):
    create_deploy(api_server, ns)
    env = {"KUBE_EDITOR": _editor(tmp_path, "s/replicas: 1$/replicas: -5/")}
    p = api_server.kubectl("-n", ns, "edit", "deploy", "web", "--validate=false", env=env)
    assert p.returncode == 1
    assert 'error: deployments.apps "web" is invalid' in p.stderr
    # kubectl keeps the edited copy with the server's causes written on top
    kept = re.search(r'A copy of your changes has been stored to "([^"]+)"', p.stderr).group(1)
    text = Path(kept).read_text()
    os.unlink(kept)
    assert '# deployments.apps "web" was not valid:' in text
    assert "# * spec.replicas: Invalid value: -5: must be greater than or equal to 0" in text
    assert api_server.kjson("-n", ns, "get", "deploy", "web")["spec"]["replicas"] == 1


def _deployment_manifest(ns: str, replicas: int, image: str, name: str = "ssa") -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}}})


@BOTH
def test_apply_server_side_create_then_change(api_server, ns, binary):
    k = lambda m, *a: api_server.kubectl("apply", "--server-side", "--validate=false", "-f", "-", *a,  # noqa: E731
                                         input=m, binary=binary)
    p = k(_deployment_manifest(ns, 1, "nginx:1.25"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "deployment.apps/ssa serverside-applied\n"
    p = k(_deployment_manifest(ns, 2, "nginx:1.26"))
    assert p.stdout == "deployment.apps/ssa serverside-applied\n", p.stderr
    d = api_server.kjson("-n", ns, "get", "deploy", "ssa")
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert d["metadata"]["generation"] == 2
    shown = api_server.kjson("-n", ns, "get", "deploy", "ssa", "--show-managed-fields")
    mf = {m["manager"]: m for m in shown["metadata"]["managedFields"]}
    assert mf["kubectl"]["operation"] == "Apply"
    # another manager takes replicas; applying again without --force-conflicts conflicts
    api_server.kubectl("-n", ns, "scale", "deploy", "ssa", "--replicas=5", check=True)
    p = k(_deployment_manifest(ns, 2, "nginx:1.26"))
    assert p.returncode == 1
    assert "Apply failed with 1 conflict: conflict with" in p.stderr and ".spec.replicas" in p.stderr
    p = k(_deployment_manifest(ns, 2, "nginx:1.26"), "--force-conflicts")
    assert p.returncode == 0, p.stderr
    assert api_server.kjson("-n", ns, "get", "deploy", "ssa")["spec"]["replicas"] == 2


# -- errors as kubectl prints them --------------------------------------------------------
@BOTH
def test_already_exists_messages(api_server, ns, tmp_path, binary):
    create_deploy(api_server, ns, binary=binary)
    p = api_server.kubectl("-n", ns, "create", "deployment", "web", "--image=x", binary=binary)
    assert p.returncode == 1
    assert p.stderr.strip() == 'error: failed to create deployment: deployments.apps "web" already exists'
    f = tmp_path / "dep.yaml"
    f.write_text(_deployment_manifest(ns, 1, "x", name="web"))
    p = api_server.kubectl("create", "--validate=false", "-f", str(f), binary=binary)
    assert p.stderr.strip() == \
        f'Error from server (AlreadyExists): error when creating "{f}": deployments.apps "web" already exists'


@BOTH
def test_invalid_object_message(api_server, ns, tmp_path, binary):
    f = tmp_path / "bad.yaml"
    f.write_text(_deployment_manifest(ns, -1, "x", name="bad"))
    p = api_server.kubectl("create", "--validate=false", "-f", str(f), binary=binary)
    assert p.returncode == 1
    assert p.stderr.strip() == \
        'The Deployment "bad" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    p = api_server.kubectl("-n", ns, "create", "deployment", "Bad_Name", "--image=x", binary=binary)
    assert p.stderr.startswith('error: failed to create deployment: Deployment.apps "Bad_Name" is invalid: '
                               'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    assert api_server.kubectl("-n", ns, "get", "deploy", "-o", "name", check=True).stdout == ""


def test_scale_missing_and_negative(api_server, ns):
    p = api_server.kubectl("-n", ns, "scale", "deploy", "nothere", "--replicas=2")
    assert p.returncode == 1 and 'deployments.apps "nothere" not found' in p.stderr
    create_deploy(api_server, ns)
    p = api_server.kubectl("-n", ns, "scale", "deploy", "web", "--replicas=-1")
    assert p.returncode != 0


# -- services ------------------------------------------------------------------------------
@BOTH
def test_service_table_and_nodeport_allocation(api_server, ns, binary):
    api_server.kubectl("-n", ns, "create", "service", "nodeport", "web", "--tcp=8080:8080", binary=binary, check=True)
    p = api_server.kubectl("-n", ns, "get", "svc", binary=binary, check=True)
    oracle = (ORACLE / "tutorial-kubectl-1.32/08-get-services.stdout").read_text()
    assert header(p.stdout) == header(oracle)
    [row] = rows(p.stdout)
    assert row[:2] == ["web", "NodePort"] and row[3] == "<none>"
    m = re.fullmatch(r"8080:(\d+)/TCP", row[4])
    assert m and 30000 <= int(m.group(1)) <= 32767
    np = api_server.kubectl("-n", ns, "get", "svc", "web", "-o", "go-template={{(index .spec.ports 0).nodePort}}",
                            binary=binary, check=True).stdout
    assert np == m.group(1)


def test_kubernetes_service_exists(api_server):
    svc = api_server.kjson("-n", "default", "get", "svc", "kubernetes")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"][0]["port"] == 443 and svc["spec"]["ports"][0]["name"] == "https"
    p = api_server.kubectl("get", "ns", "-o", "name", check=True)
    for n in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{n}" in p.stdout.split()
