"""Conformance of the served API surface: ReplicationControllers, one Event resource behind
two APIs, and discovery / OpenAPI / the catalogue agreeing with what is actually served.

Driven with the real kubectl 1.33 (and raw HTTPS where kubectl has no verb for it) against a
fresh API server, one namespace per test.
"""
from __future__ import annotations

import json

import pytest
from conftest import KUBECTL, KUBECTL_OLD

BOTH = pytest.mark.parametrize("binary", [pytest.param(KUBECTL, id="kubectl-1.33"),
                                          pytest.param(KUBECTL_OLD, id="kubectl-1.28")])

RC = """\
apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def header(out: str) -> list[str]:
    """The column names of kubectl's table output."""
    return out.splitlines()[0].split()


# --------------------------------------------------------------------------- replicationcontrollers

def test_get_rc_in_kube_system_finds_none(api_server):
    # Upstream e2e set-up lists ReplicationControllers in kube-system and fails on a 404.
    p = api_server.kubectl("get", "rc", "-n", "kube-system", check=True)
    assert p.stdout == ""
    assert p.stderr.strip() == "No resources found in kube-system namespace."


@BOTH
def test_rc_create_get_wide_and_defaults(api_server, ns, binary):
    api_server.kubectl("-n", ns, "apply", "-f", "-", input=RC.format(name="web", replicas=2), binary=binary, check=True)
    p = api_server.kubectl("-n", ns, "get", "rc", binary=binary, check=True)
    assert header(p.stdout) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert p.stdout.splitlines()[1].split()[:4] == ["web", "2", "0", "0"]
    p = api_server.kubectl("-n", ns, "get", "replicationcontrollers", "-o", "wide", binary=binary, check=True)
    assert header(p.stdout) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    row = p.stdout.splitlines()[1].split()
    assert row[:4] == ["web", "2", "0", "0"] and row[5:] == ["web", "nginx:1.25", "app=web"]
    rc = api_server.kjson("-n", ns, "get", "rc", "web", binary=binary)
    # Selector and object labels default to the template's labels; status is written by the system.
    assert rc["spec"]["selector"] == {"app": "web"}
    assert rc["metadata"]["labels"] == {"app": "web"}
    assert rc["metadata"]["generation"] == 1
    assert rc["status"] == {"replicas": 0}
    assert rc["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_rc_scale_subresource_and_generation(api_server, ns):
    api_server.kubectl("-n", ns, "create", "-f", "-", input=RC.format(name="web", replicas=1), check=True)
    p = api_server.kubectl("-n", ns, "scale", "rc", "web", "--replicas=3", check=True)
    assert p.stdout.strip() == "replicationcontroller/web scaled"
    rc = api_server.kjson("-n", ns, "get", "rc", "web")
    assert rc["spec"]["replicas"] == 3 and rc["metadata"]["generation"] == 2
    scale = json.loads(api_server.kubectl(
        "get", "--raw", f"/api/v1/namespaces/{ns}/replicationcontrollers/web/scale", check=True).stdout)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 3} and scale["status"] == {"replicas": 0, "selector": "app=web"}
    # A label change is not a spec change; the selector of an RC may change (unlike a ReplicaSet's).
    api_server.kubectl("-n", ns, "label", "rc", "web", "tier=fe", check=True)
    assert api_server.kjson("-n", ns, "get", "rc", "web")["metadata"]["generation"] == 2
    api_server.kubectl("-n", ns, "patch", "rc", "web", "--type=merge", "-p",
                       '{"spec":{"selector":{"app":"web","v":"2"},"template":{"metadata":{"labels":{"app":"web","v":"2"}}}}}',
                       check=True)
    assert api_server.kjson("-n", ns, "get", "rc", "web")["spec"]["selector"] == {"app": "web", "v": "2"}


def test_rc_status_subresource_validates_counters(api_server, ns):
    api_server.kubectl("-n", ns, "create", "-f", "-", input=RC.format(name="web", replicas=1), check=True)
    p = api_server.kubectl("-n", ns, "patch", "rc", "web", "--subresource=status", "--type=merge",
                           "-p", '{"status":{"replicas":1,"readyReplicas":2}}')
    assert p.returncode != 0
    assert p.stderr.strip() == ('The ReplicationController "web" is invalid: status.readyReplicas: '
                                'Invalid value: 2: cannot be greater than status.replicas')
    api_server.kubectl("-n", ns, "patch", "rc", "web", "--subresource=status", "--type=merge",
                       "-p", '{"status":{"replicas":1,"readyReplicas":1}}', check=True)
    p = api_server.kubectl("-n", ns, "get", "rc", "web", "--no-headers", check=True)
    assert p.stdout.split()[:4] == ["web", "1", "1", "1"]


def test_rc_invalid_spec_is_rejected_with_upstream_causes(api_server, ns):
    bad = """\
apiVersion: v1
kind: ReplicationController
metadata:
  name: bad
spec:
  replicas: -1
  selector: {app: other}
  template:
    metadata:
      labels: {app: bad}
    spec:
      restartPolicy: Never
      activeDeadlineSeconds: 5
      containers:
      - name: web
        image: nginx:1.25
"""
    p = api_server.kubectl("-n", ns, "create", "-f", "-", input=bad)
    assert p.returncode != 0
    assert p.stderr.splitlines() == [
        'The ReplicationController "bad" is invalid: ',
        "* spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        '* spec.template.metadata.labels: Invalid value: map[string]string{"app":"bad"}: '
        "`selector` does not match template `labels`",
        '* spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "* spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController "
        "is not Supported",
    ]
    no_labels = RC.format(name="bare", replicas=1).replace("    metadata:\n      labels: {app: bare}\n", "")
    p = api_server.kubectl("-n", ns, "create", "-f", "-", input=no_labels)
    assert p.returncode != 0
    assert p.stderr.strip() == 'The ReplicationController "bare" is invalid: spec.selector: Required value'


def test_get_all_includes_replicationcontrollers(api_server, ns):
    api_server.kubectl("-n", ns, "create", "-f", "-", input=RC.format(name="web", replicas=1), check=True)
    p = api_server.kubectl("-n", ns, "get", "all", check=True)
    assert "replicationcontroller/web" in p.stdout
