"""Conformance of the served API surface: ReplicationControllers, one Event resource behind
two APIs, and discovery / OpenAPI / the catalogue agreeing with what is actually served.

Driven with the real kubectl 1.33 (and raw HTTPS where kubectl has no verb for it) against a
fresh API server, one namespace per test.
"""
from __future__ import annotations

import json

import pytest
from conftest import KUBECTL, KUBECTL_OLD
from test_openapi import Raw

from kubelite.api import protobuf
from kubelite.api.conversion import event_from_core, event_to_core
from kubelite.api.resources import RESOURCES

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


# --------------------------------------------------------------------------- one Event, two APIs

def events_v1(name: str, ns: str, note: str = "made through events.k8s.io") -> str:
    """An events.k8s.io/v1 Event manifest about a pod, as a new-style recorder writes it."""
    return f"""\
apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: {name}
  namespace: {ns}
eventTime: "2030-01-01T12:00:00.000000Z"
reportingController: example.com/tester
reportingInstance: tester-1
action: Testing
reason: Checked
type: Warning
note: {note}
regarding:
  kind: Pod
  name: some-pod
  namespace: {ns}
"""


def core_v1(name: str, ns: str) -> str:
    """A core/v1 Event manifest, as the legacy recorder (kubelet, controllers) writes it."""
    return f"""\
apiVersion: v1
kind: Event
metadata:
  name: {name}
  namespace: {ns}
involvedObject:
  kind: Pod
  name: other-pod
  namespace: {ns}
reason: Pulled
message: made through core v1
type: Normal
source: {{component: kubelet, host: node-1}}
firstTimestamp: "2030-01-01T11:00:00Z"
lastTimestamp: "2030-01-01T12:00:00Z"
count: 3
"""


CORE_EVENT = {
    "kind": "Event", "apiVersion": "v1", "metadata": {"name": "e", "namespace": "d", "creationTimestamp": None},
    "involvedObject": {"kind": "Pod", "namespace": "d", "name": "p", "fieldPath": "spec.containers{c}"},
    "reason": "Pulled", "message": "pulled", "source": {"component": "kubelet", "host": "n1"},
    "firstTimestamp": "2030-01-01T11:00:00Z", "lastTimestamp": "2030-01-01T12:00:00Z", "count": 4, "type": "Normal",
    "eventTime": None, "series": {"count": 4, "lastObservedTime": "2030-01-01T12:00:00.000000Z"},
    "action": "Pull", "related": {"kind": "Node", "name": "n1"},
    "reportingComponent": "kubelet", "reportingInstance": "n1",
}
EVENTS_EVENT = {
    "kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": {"name": "e", "namespace": "d",
                                                                    "creationTimestamp": None},
    "eventTime": "2030-01-01T12:00:00.000000Z", "reportingController": "example.com/c", "reportingInstance": "c-1",
    "action": "Act", "reason": "Why", "regarding": {"kind": "Pod", "name": "p"}, "note": "said", "type": "Warning",
    "deprecatedSource": {}, "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None,
}


@pytest.mark.parametrize("obj,there,back", [(CORE_EVENT, event_from_core, event_to_core),
                                            (EVENTS_EVENT, event_to_core, event_from_core)], ids=["core", "events"])
def test_event_conversion_round_trips_and_writes_go_json(obj, there, back):
    converted = there(obj)
    assert back(converted) == obj
    # Go's protobuf + JSON round trip writes exactly the fields a Go client would see.
    assert protobuf.decode(protobuf.encode(converted)) == converted


def test_event_conversion_renames_fields_as_upstream():
    ev = event_from_core(CORE_EVENT)
    assert (ev["regarding"], ev["note"], ev["reportingController"], ev["deprecatedSource"], ev["deprecatedCount"],
            ev["deprecatedFirstTimestamp"], ev["deprecatedLastTimestamp"]) == (
        CORE_EVENT["involvedObject"], "pulled", "kubelet", {"component": "kubelet", "host": "n1"}, 4,
        "2030-01-01T11:00:00Z", "2030-01-01T12:00:00Z")
    assert {k: ev[k] for k in ("series", "action", "related", "reportingInstance", "reason", "type", "eventTime")} == {
        k: CORE_EVENT[k] for k in ("series", "action", "related", "reportingInstance", "reason", "type", "eventTime")}
    core = event_to_core(EVENTS_EVENT)
    # Unset optional fields stay out; the ones Go always writes are there, empty.
    assert core["reportingComponent"] == "example.com/c" and core["message"] == "said"
    assert "count" not in core and "series" not in core and core["source"] == {} and core["firstTimestamp"] is None


def test_event_created_through_events_api_is_seen_by_kubectl_get_events_and_kubectl_events(api_server, ns):
    p = api_server.kubectl("create", "-f", "-", input=events_v1("new-style", ns), check=True)
    assert p.stdout.strip() == "event.events.k8s.io/new-style created"
    p = api_server.kubectl("-n", ns, "get", "events", check=True)
    assert header(p.stdout) == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert p.stdout.splitlines()[1].split()[1:] == ["Warning", "Checked", "pod/some-pod", "made", "through",
                                                    "events.k8s.io"]
    p = api_server.kubectl("-n", ns, "events", check=True)
    assert "Checked" in p.stdout and "Pod/some-pod" in p.stdout and "made through events.k8s.io" in p.stdout
    core = api_server.kjson("-n", ns, "get", "events.v1.", "new-style")
    assert core["apiVersion"] == "v1"
    assert {k: core[k] for k in ("involvedObject", "message", "reportingComponent", "reportingInstance",
                                 "source", "firstTimestamp", "eventTime", "action", "reason", "type")} == {
        "involvedObject": {"kind": "Pod", "name": "some-pod", "namespace": ns},
        "message": "made through events.k8s.io", "reportingComponent": "example.com/tester",
        "reportingInstance": "tester-1", "source": {}, "firstTimestamp": None,
        "eventTime": "2030-01-01T12:00:00.000000Z", "action": "Testing", "reason": "Checked", "type": "Warning"}
    assert "note" not in core and "regarding" not in core


def test_core_event_is_served_by_events_api_with_its_field_names(api_server, ns):
    api_server.kubectl("create", "-f", "-", input=core_v1("old-style", ns), check=True)
    ev = api_server.kjson("-n", ns, "get", "events.v1.events.k8s.io", "old-style")
    assert ev["apiVersion"] == "events.k8s.io/v1" and ev["kind"] == "Event"
    assert {k: v for k, v in ev.items() if k not in ("apiVersion", "kind", "metadata")} == {
        "eventTime": None, "reason": "Pulled", "regarding": {"kind": "Pod", "name": "other-pod", "namespace": ns},
        "note": "made through core v1", "type": "Normal",
        "deprecatedSource": {"component": "kubelet", "host": "node-1"},
        "deprecatedFirstTimestamp": "2030-01-01T11:00:00Z", "deprecatedLastTimestamp": "2030-01-01T12:00:00Z",
        "deprecatedCount": 3}
    p = api_server.kubectl("-n", ns, "get", "events.events.k8s.io", check=True)
    assert "pod/other-pod" in p.stdout and "made through core v1" in p.stdout


def test_events_api_should_ensure_that_an_event_can_be_fetched_patched_deleted_and_listed(api_server, ns):
    # The upstream spec's steps, each write made through the other API than the read.
    api_server.kubectl("create", "-f", "-", input=events_v1("e1", ns), check=True)
    api_server.kubectl("-n", ns, "patch", "events.v1.", "e1", "--type=merge", "-p", '{"message":"patched"}',
                       check=True)
    assert api_server.kjson("-n", ns, "get", "events.v1.events.k8s.io", "e1")["note"] == "patched"
    api_server.kubectl("-n", ns, "patch", "events.v1.events.k8s.io", "e1", "--type=merge",
                       "-p", '{"note":"patched again","series":{"count":2,"lastObservedTime":"2030-01-01T12:01:00.000000Z"}}',
                       check=True)
    core = api_server.kjson("-n", ns, "get", "events.v1.", "e1")
    assert core["message"] == "patched again"
    assert core["series"] == {"count": 2, "lastObservedTime": "2030-01-01T12:01:00.000000Z"}
    names = lambda resource: [i["metadata"]["name"] for i in api_server.kjson("-n", ns, "get", resource)["items"]]  # noqa: E731
    assert names("events.v1.") == names("events.v1.events.k8s.io") == ["e1"]
    p = api_server.kubectl("-n", ns, "delete", "events.v1.events.k8s.io", "e1", check=True)
    assert p.stdout.strip() == 'event.events.k8s.io "e1" deleted'
    p = api_server.kubectl("-n", ns, "get", "events.v1.", "e1")
    assert p.returncode != 0 and p.stderr.strip() == 'Error from server (NotFound): events "e1" not found'


def test_events_api_should_delete_a_collection_of_events(api_server, ns):
    for name in ("c1", "c2"):
        api_server.kubectl("create", "-f", "-", input=core_v1(name, ns), check=True)
    api_server.kubectl("create", "-f", "-", input=events_v1("c3", ns), check=True)
    api_server.kubectl("-n", ns, "delete", "events.v1.events.k8s.io", "--all", check=True)
    p = api_server.kubectl("-n", ns, "get", "events", check=True)
    assert p.stdout == "" and p.stderr.strip() == f"No resources found in {ns} namespace."


@pytest.mark.parametrize("write,watch", [("events.k8s.io/v1", "v1"), ("v1", "events.k8s.io/v1")])
def test_watch_through_one_api_sees_writes_through_the_other(api_server, ns, write, watch):
    base = f"/api/v1/namespaces/{ns}/events" if watch == "v1" else f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    rv = json.loads(api_server.kubectl("get", "--raw", base, check=True).stdout)["metadata"]["resourceVersion"]
    manifest = events_v1("watched", ns) if write == "events.k8s.io/v1" else core_v1("watched", ns)
    api_server.kubectl("create", "-f", "-", input=manifest, check=True)
    # Watching from the list's resourceVersion replays the create, whenever the watch starts.
    p = api_server.kubectl("get", "--raw", f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1", check=True)
    events = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"], e["object"]["apiVersion"]) for e in events] == [
        ("ADDED", "watched", watch)]
    obj = events[0]["object"]
    if watch == "v1":
        assert obj["message"] == "made through events.k8s.io" and obj["involvedObject"]["name"] == "some-pod"
    else:
        assert obj["note"] == "made through core v1" and obj["regarding"]["name"] == "other-pod"


# --------------------------------------------------------------------------- discovery, OpenAPI, catalogue

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# One object per resource with a status or scale subresource, so that GET on it can be tried.
# Cluster-scoped ones get the test's namespace name as their own name.
SUBJECTS = {
    ("", "namespaces"): None,  # the test's namespace itself
    ("", "nodes"): {"apiVersion": "v1", "kind": "Node", "metadata": {}},
    ("", "pods"): {"apiVersion": "v1", "kind": "Pod", "metadata": {},
                   "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}},
    ("", "services"): {"apiVersion": "v1", "kind": "Service", "metadata": {},
                       "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}},
    ("", "replicationcontrollers"): {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {},
                                     "spec": {"replicas": 0, "selector": {"app": "x"}, "template": {
                                         "metadata": {"labels": {"app": "x"}},
                                         "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}},
    ("apps", "deployments"): {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {},
                              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": {
                                  "metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}},
    ("apps", "replicasets"): {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {},
                              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": {
                                  "metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}},
    # One object for both served versions (v1 is a view of the stored v2).
    ("autoscaling", "horizontalpodautoscalers"): {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "maxReplicas": 2}},
    ("batch", "jobs"): {"apiVersion": "batch/v1", "kind": "Job", "metadata": {},
                        "spec": {"suspend": True, "template": {"spec": {
                            "restartPolicy": "Never", "containers": [{"name": "c", "image": "nginx:1.25"}]}}}},
    ("batch", "cronjobs"): {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {},
                            "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {"template": {
                                "spec": {"restartPolicy": "OnFailure",
                                         "containers": [{"name": "c", "image": "nginx:1.25"}]}}}}}},
    ("apps", "statefulsets"): {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {},
                               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": {
                                   "metadata": {"labels": {"app": "x"}},
                                   "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}},
    ("apps", "daemonsets"): {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {},
                             "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
                                 "metadata": {"labels": {"app": "x"}},
                                 "spec": {"nodeSelector": {"kubelite.dev/none": "x"},
                                          "containers": [{"name": "c", "image": "nginx:1.25"}]}}}},
    ("networking.k8s.io", "ingresses"): {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {},
                                         "spec": {"ingressClassName": "none", "defaultBackend": {
                                             "service": {"name": "web", "port": {"number": 80}}}}},
    ("policy", "poddisruptionbudgets"): {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {},
                                         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}},
    ("", "resourcequotas"): {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {},
                             "spec": {"hard": {"configmaps": "100"}}},
    # A CRD's name is <plural>.<group>: built from the test's namespace name by _crd_subject.
    ("apiextensions.k8s.io", "customresourcedefinitions"): "crd",
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {},
        "spec": {"validations": [{"expression": "true"}], "matchConstraints": {"resourceRules": [{
            "operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": ["v1"],
            "resources": ["nothings"]}]}}},
    ("", "persistentvolumes"): {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}}},
    ("", "persistentvolumeclaims"): {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    # An APIService's name is <version>.<group>: built from the namespace name too.
    ("apiregistration.k8s.io", "apiservices"): "apiservice",
}
# Connect subresources reach a node or a pod's address, which a test may not dial; binding,
# eviction and finalize have no GET.
NOT_READ = {"attach", "exec", "log", "portforward", "proxy", "binding", "eviction", "finalize", "token"}


def _crd_subject(ns: str) -> tuple[str, dict]:
    """A minimal CustomResourceDefinition whose plural is derived from ``ns``, and its name."""
    plural = ns.replace("-", "")[:50]
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "spec": {"group": "subjects.kubelite.example.com", "scope": "Namespaced",
                    "names": {"plural": plural, "kind": "Subject" + plural[-4:]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    return f"{plural}.subjects.kubelite.example.com", crd


def _apiservice_subject(ns: str) -> tuple[str, dict]:
    """A local APIService for a group named after ``ns``, and its name."""
    group = f"{ns}.subjects.kubelite.example.com"
    return f"v1.{group}", {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                           "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 100,
                                    "versionPriority": 10}}


def gv_path(group: str, version: str) -> str:
    """/api/v1 or /apis/<group>/<version>."""
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


@pytest.fixture(scope="module")
def raw(api_server) -> Raw:
    return Raw(api_server)


def get_json(raw: Raw, path: str, **headers: str) -> dict:
    """GET a JSON document that must exist."""
    r = raw.get(path, **headers)
    assert r.status == 200, (path, r.status, r.body[:300])
    return json.loads(r.body)


def aggregated(raw: Raw) -> dict[tuple[str, str, str], dict]:
    """{(group, version, resource): entry} from aggregated discovery of /api and /apis."""
    out = {}
    for root in ("/api", "/apis"):
        for g in get_json(raw, root, Accept=AGGREGATED)["items"]:
            for v in g["versions"]:
                for r in v["resources"]:
                    out[(g["metadata"]["name"], v["version"], r["resource"])] = r
    return out


def legacy(raw: Raw) -> dict[tuple[str, str, str], dict]:
    """{(group, version, name): entry} from /api/v1 and every /apis/<g>/<v>; subresources as "x/sub"."""
    gvs = [("", v) for v in get_json(raw, "/api")["versions"]]
    for g in get_json(raw, "/apis")["groups"]:
        preferred = g["preferredVersion"]["groupVersion"]
        assert preferred in [v["groupVersion"] for v in g["versions"]], g["name"]
        gvs += [(g["name"], v["version"]) for v in g["versions"]]
    out = {}
    for group, version in gvs:
        doc = get_json(raw, gv_path(group, version))
        assert doc["groupVersion"] == (f"{group}/{version}" if group else version)
        for r in doc["resources"]:
            out[(group, version, r["name"])] = r
    return out


def test_discovery_aggregated_and_legacy_agree_with_the_catalogue(raw):
    agg, leg = aggregated(raw), legacy(raw)
    flat = set(agg) | {(g, v, f"{r}/{s['subresource']}") for (g, v, r), e in agg.items() for s in e.get("subresources", [])}
    assert flat == set(leg)
    assert set(agg) == {(r.group, r.version, r.plural) for r in RESOURCES}
    for r in RESOURCES:
        a, entry = agg[r.gvr], leg[r.gvr]
        assert sorted(a["verbs"]) == sorted(entry["verbs"]) == sorted(r.verbs), r.plural
        assert a["responseKind"]["kind"] == entry["kind"] == r.kind
        assert a.get("shortNames", []) == entry.get("shortNames", []) == list(r.short_names)
        assert (a["scope"] == "Namespaced") == entry["namespaced"] == r.namespaced


def test_every_discovered_resource_is_served(api_server, raw, ns):
    """A LIST of every resource in discovery answers (no 404), and GET of every status and scale."""
    made = []
    try:
        for (group, version, resource), entry in sorted(aggregated(raw).items()):
            base = gv_path(group, version)
            scoped = f"{base}/namespaces/{ns}/{resource}" if entry["scope"] == "Namespaced" else f"{base}/{resource}"
            r = raw.get(scoped)
            if "list" in entry["verbs"]:
                assert r.status == 200, (scoped, r.status, r.body[:300])
                assert json.loads(r.body)["kind"] == entry["responseKind"]["kind"] + "List"
                if entry["scope"] == "Namespaced":  # and across all namespaces
                    assert raw.get(f"{base}/{resource}").status == 200, resource
            else:
                assert r.status == 405, (scoped, r.status)  # served, but not for GET
            readable = [s["subresource"] for s in entry.get("subresources", []) if s["subresource"] not in NOT_READ]
            if not readable:
                continue
            assert (group, resource) in SUBJECTS, f"add an object of {resource} to SUBJECTS"
            name = ns
            subject = SUBJECTS[(group, resource)]
            if subject == "crd":
                name, subject = _crd_subject(ns)
            elif subject == "apiservice":
                name, subject = _apiservice_subject(ns)
            made_key = (resource + ("." + group if group else ""), name, entry["scope"] == "Namespaced")
            if isinstance(subject, dict) and made_key not in made:  # another version may have made it
                obj = dict(subject, metadata={"name": name})
                api_server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(obj), check=True)
                made.append(made_key)
            for sub in readable:
                r = raw.get(f"{scoped}/{name}/{sub}")
                assert r.status == 200, (scoped, sub, r.status, r.body[:300])
                kind = next(s for s in entry["subresources"] if s["subresource"] == sub)["responseKind"]["kind"]
                assert json.loads(r.body)["kind"] == kind
    finally:
        for resource, name, namespaced in made:
            api_server.kubectl(*(["-n", ns] if namespaced else []), "delete", resource, name, "--wait=false")


def test_every_served_resource_is_in_openapi_v2_and_v3(raw):
    v2 = get_json(raw, "/openapi/v2", Accept="application/json")
    v3_root = get_json(raw, "/openapi/v3")["paths"]
    agg = aggregated(raw)
    assert set(v3_root) == {gv_path(g, v).lstrip("/") for g, v, _ in agg}
    v3 = {gv: get_json(raw, e["serverRelativeURL"], Accept="application/json") for gv, e in v3_root.items()}
    documented = set()
    for (group, version, resource), entry in agg.items():
        base = gv_path(group, version)
        scoped = f"{base}/namespaces/{{namespace}}/{resource}" if entry["scope"] == "Namespaced" else f"{base}/{resource}"
        want = {}
        if "list" in entry["verbs"]:
            want[scoped] = "get"
        if "create" in entry["verbs"]:
            want[scoped] = "post"
        if "get" in entry["verbs"]:
            want[f"{scoped}/{{name}}"] = "get"
        for s in entry.get("subresources", []):
            if s["subresource"] in ("status", "scale"):
                want[f"{scoped}/{{name}}/{s['subresource']}"] = "get"
        assert want, resource
        for path, method in want.items():
            op = v2["paths"].get(path, {}).get(method)
            assert op is not None, f"{method} {path} missing from OpenAPI v2"
            assert method in v3[base.lstrip("/")]["paths"].get(path, {}), f"{method} {path} missing from OpenAPI v3"
            documented.add(path)
        gvk = v2["paths"][f"{scoped}/{{name}}" if "get" in entry["verbs"] else scoped]
        op = gvk.get("get") or gvk["post"]
        assert op["x-kubernetes-group-version-kind"] == {"group": group, "version": version,
                                                         "kind": entry["responseKind"]["kind"]}
    # Conversely, every documented resource path belongs to a discovered resource.
    for path in v2["paths"]:
        parts = path.strip("/").split("/")
        group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
        if rest[:2] == ["namespaces", "{namespace}"] and len(rest) > 2:
            rest = rest[2:]
        assert (group, version, rest[0]) in agg, path
