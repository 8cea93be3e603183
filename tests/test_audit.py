"""The audit log (`--audit-policy-file`, `--audit-log-path`): policy rules pick a level per
request; events are audit.k8s.io/v1 Event lines with the stages, bodies and annotations
kube-apiserver writes; a ValidatingAdmissionPolicy's Audit action and auditAnnotations land
in the request's event."""
from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time

import pytest

from kubelite.apiserver.audit import ANONYMOUS, PolicyError, parse_policy
from kubelite.apiserver.authn import User
from kubelite.apiserver.authz.attributes import request_attributes
from tests.conftest import API_ONLY, KUBECTL, audit_events, audit_flags, start_server

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/openapi*", "/api", "/apis*", "/version"]
- level: RequestResponse
  omitManagedFields: true
  omitStages: ["RequestReceived"]
  resources: [{group: "", resources: ["configmaps"]}]
- level: Metadata
  omitStages: ["RequestReceived"]
  resources: [{group: "", resources: ["secrets"]}]
- level: Metadata
  verbs: ["create"]
  resources: [{group: "", resources: ["namespaces"]}]
"""


def attrs(method: str, path: str, user: User | None = None, **query: str):
    """The request attributes the audit policy is decided on."""
    return request_attributes(user or User("alice", ["devs", "system:authenticated"]), method, path, query)


def test_rules_match_users_groups_verbs_namespaces_resources_and_paths():
    p = parse_policy("""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- {level: None, users: [bob]}
- {level: RequestResponse, userGroups: [auditors], verbs: [get]}
- {level: Request, namespaces: [prod], resources: [{group: apps, resources: [deployments/*]}]}
- {level: Metadata, resources: [{group: "", resources: ["*/status"]}, {group: "", resources: [secrets], resourceNames: [token]}]}
- {level: Request, nonResourceURLs: ["/metrics", "/debug/*"], omitStages: [ResponseStarted]}
""")
    assert p.decide(attrs("GET", "/api/v1/pods", User("bob")))[0] == "None"
    assert p.decide(attrs("GET", "/api/v1/namespaces/a/pods/x", User("eve", ["auditors"])))[0] == "RequestResponse"
    assert p.decide(attrs("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web/scale"))[0] == "Request"
    # "deployments/*" covers the Deployment itself too (upstream's audit rules, unlike RBAC's).
    assert p.decide(attrs("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web"))[0] == "Request"
    assert p.decide(attrs("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web/scale"))[0] == "None"
    assert p.decide(attrs("PUT", "/api/v1/namespaces/a/pods/x/status"))[0] == "Metadata"
    assert p.decide(attrs("GET", "/api/v1/namespaces/a/secrets/token"))[0] == "Metadata"
    assert p.decide(attrs("GET", "/api/v1/namespaces/a/secrets/other"))[0] == "None"
    level, omit, _ = p.decide(attrs("GET", "/debug/pprof/heap"))
    assert level == "Request" and omit == {"RequestReceived", "ResponseStarted"}
    assert p.decide(attrs("GET", "/metrics"))[0] == "Request"
    assert p.decide(attrs("GET", "/metricsx"))[0] == "None"
    assert p.decide(attrs("GET", "/healthz", ANONYMOUS))[0] == "None"


@pytest.mark.parametrize("text,message", [
    ("kind: Policy\napiVersion: v1\nrules: [{level: None}]", "apiVersion: unsupported"),
    ("kind: Pod\napiVersion: audit.k8s.io/v1", "kind: must be Policy"),
    ("kind: Policy\napiVersion: audit.k8s.io/v1\nrules: []", "at least one rule"),
    ("kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: Everything}]", "rules[0].level: unsupported value"),
    ("kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, omitStages: [Later]}]",
     "rules[0].omitStages: unsupported value 'Later'"),
    ("kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, nonResourceURLs: ['/x'], namespaces: [a]}]",
     "nonResourceURLs cannot be combined"),
])
def test_a_bad_policy_is_refused_with_where_it_is_wrong(text, message):
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(text)


def test_a_bad_policy_file_stops_the_server_with_its_reason(tmp_path):
    (tmp_path / "p.yaml").write_text("kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: Loud}]\n")
    p = subprocess.run(["python3", "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "d"), "--api-port", "1",
                        *API_ONLY, "--audit-policy-file", str(tmp_path / "p.yaml"), "--audit-log-path",
                        str(tmp_path / "audit.log")], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "rules[0].level: unsupported value 'Loud'" in p.stderr


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A server writing the audit log POLICY selects."""
    tmp = tmp_path_factory.mktemp("audit")
    flags, log = audit_flags(tmp, POLICY)
    srv = start_server(tmp, *API_ONLY, *flags)
    yield srv, log
    srv.stop()


def wait_event(path, cond, what: str) -> dict:
    """The first event ``cond`` accepts, waiting for it to be written."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for ev in audit_events(path):
            if cond(ev):
                return ev
        time.sleep(0.05)
    raise AssertionError(f"no audit event for {what}")


def test_a_configmap_write_is_logged_with_both_bodies_and_a_secret_without_its_data(audited):
    srv, log = audited
    srv.kubectl("create", "configmap", "audited-cm", "--from-literal=colour=blue", check=True)
    ev = wait_event(log, lambda e: e.get("objectRef", {}).get("name") == "audited-cm" and e["verb"] == "create",
                    "the ConfigMap create")
    assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1"
    assert ev["level"] == "RequestResponse" and ev["stage"] == "ResponseComplete"
    assert ev["objectRef"] == {"resource": "configmaps", "namespace": "default", "name": "audited-cm",
                               "apiVersion": "v1"}
    assert ev["user"]["username"] == "kubelite-admin" and "system:masters" in ev["user"]["groups"]
    assert ev["responseStatus"]["code"] == 201
    assert ev["requestObject"]["data"] == {"colour": "blue"}
    assert ev["responseObject"]["metadata"]["name"] == "audited-cm"
    assert "managedFields" not in ev["responseObject"]["metadata"]  # omitManagedFields
    assert ev["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert ev["userAgent"].startswith("kubectl") and ev["sourceIPs"] == ["127.0.0.1"]
    assert ev["requestReceivedTimestamp"] <= ev["stageTimestamp"]
    # RequestReceived is omitted by the rule: one event per request.
    assert [e["stage"] for e in audit_events(log) if e["auditID"] == ev["auditID"]] == ["ResponseComplete"]

    srv.kubectl("create", "secret", "generic", "audited-secret", "--from-literal=password=hunter2-audited", check=True)
    ev = wait_event(log, lambda e: e.get("objectRef", {}).get("name") == "audited-secret", "the Secret create")
    assert ev["level"] == "Metadata" and "requestObject" not in ev and "responseObject" not in ev
    assert "hunter2" not in log.read_text()
    # Requests no rule selects (a Deployment list) and the health checks are not logged.
    srv.kubectl("get", "deployments", check=True)
    assert not any(e.get("objectRef", {}).get("resource") == "deployments" for e in audit_events(log))
    assert not any(e["requestURI"].startswith("/readyz") for e in audit_events(log))


def test_a_refused_or_missing_object_has_its_status_in_the_event(audited):
    srv, log = audited
    p = srv.kubectl("get", "configmap", "no-such-cm")
    assert p.returncode != 0
    ev = wait_event(log, lambda e: e.get("objectRef", {}).get("name") == "no-such-cm", "the 404 get")
    assert ev["responseStatus"]["code"] == 404 and ev["responseStatus"]["reason"] == "NotFound"
    assert ev["responseStatus"]["status"] == "Failure"


def test_every_answer_carries_its_audit_id_and_a_namespace_create_keeps_request_received(audited):
    srv, log = audited
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    ctx.load_cert_chain(str(srv.data_dir / "tls" / "admin.crt"), str(srv.data_dir / "tls" / "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=30)
    try:
        body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "audited-ns"}})
        conn.request("POST", "/api/v1/namespaces", body=body, headers={"Content-Type": "application/json",
                                                                      "Audit-ID": "my-own-audit-id"})
        r = conn.getresponse()
        r.read()
        assert r.status == 201 and r.getheader("Audit-Id") == "my-own-audit-id"
        conn.request("GET", "/api/v1/namespaces/default")
        r = conn.getresponse()
        r.read()
        generated = r.getheader("Audit-Id")
        assert generated and generated != "my-own-audit-id"
    finally:
        conn.close()
    wait_event(log, lambda e: e["auditID"] == "my-own-audit-id" and e["stage"] == "ResponseComplete", "the create")
    stages = [e["stage"] for e in audit_events(log) if e["auditID"] == "my-own-audit-id"]
    assert stages == ["RequestReceived", "ResponseComplete"]  # that rule omits no stage


def test_a_watch_has_a_response_started_stage(audited):
    srv, log = audited
    srv.kubectl("get", "configmaps", "--watch", "--request-timeout=2s")
    started = wait_event(log, lambda e: e["verb"] == "watch" and e["stage"] == "ResponseStarted", "the watch start")
    wait_event(log, lambda e: e["auditID"] == started["auditID"] and e["stage"] == "ResponseComplete", "the watch end")


FAILURE = "validation.policy.admission.k8s.io/validation_failure"
VAP = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: colour-check}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations:
  - expression: "!has(object.data) || !('colour' in object.data) || object.data.colour != 'red'"
    message: red is not allowed
  auditAnnotations:
  - key: colour
    valueExpression: "has(object.data) && 'colour' in object.data ? 'colour is ' + object.data.colour : null"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: colour-check-audit}
spec:
  policyName: colour-check
  validationActions: [Audit]
"""


def test_a_policy_with_the_audit_action_admits_and_records_its_failure(audited):
    srv, log = audited
    srv.kubectl("apply", "-f", "-", input=VAP, check=True)

    names: list[str] = []

    def audited_create() -> dict | None:
        # The binding takes effect a moment after it is stored: a new name per attempt.
        name = f"red-cm-{len(names)}"
        names.append(name)
        srv.kubectl("create", "configmap", name, "--from-literal=colour=red", check=True)
        # The event is written before the answer is sent, so it is there now.
        return next((e for e in audit_events(log) if e.get("objectRef", {}).get("name") == name and e["verb"] == "create"
                     and FAILURE in e.get("annotations", {})), None)
    ev = srv.wait_for(audited_create, timeout=30, what="a red ConfigMap admitted with its audit annotation")
    failures = json.loads(ev["annotations"][FAILURE])
    assert failures == [{"message": "red is not allowed", "policy": "colour-check", "binding": "colour-check-audit",
                         "expressionIndex": 0, "validationActions": ["Audit"]}]
    assert ev["annotations"]["colour-check/colour"] == "colour is red"
    assert ev["responseStatus"]["code"] == 201  # Audit alone admits


def test_kubectl_sees_the_server_as_usual_with_auditing_on(audited):
    srv, _ = audited
    p = subprocess.run([KUBECTL, "--kubeconfig", srv.kubeconfig, "get", "--raw", "/api/v1/namespaces/default"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["metadata"]["name"] == "default"
