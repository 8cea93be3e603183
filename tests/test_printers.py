"""Server-side printing: Tables must match what a real v1.28 kube-apiserver returned.

The recorded Tables in the oracle were taken at about 2026-11-25T20:37:54.25Z; with ``now``
pinned there every cell (ages included) must come out identical.  The remaining tests pin
upstream's cell rules (pod STATUS ladder, RESTARTS, services, endpoints, nodes, events) one
case at a time, using the STATUS strings the tutorial's ``kubectl get`` printed.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest

from kubelite.api.duration import human_duration, short_human_duration
from kubelite.api.printers import columns_for, table_for

SAMPLES = Path("/work/shared/oracle/api-samples")
TUTORIAL = Path("/work/shared/oracle/tutorial-kubectl-1.32")
RECORDED_AT = dt.datetime(2026, 11, 25, 20, 37, 54, 255000, tzinfo=dt.UTC)
NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def ago(seconds: float) -> str:
    """An RFC3339 timestamp ``seconds`` before NOW."""
    return (NOW - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(kind: str, api_version: str, obj: dict) -> list:
    return table_for(kind, api_version, [obj], now=NOW)["rows"][0]["cells"]


# --- HumanDuration -------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,want", [
    (-5, "<invalid>"), (-2, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (-0.2, "0s"), (0, "0s"), (0.9, "0s"),
    (1, "1s"), (59, "59s"), (119, "119s"), (119.999, "119s"),
    (120, "2m"), (121, "2m1s"), (599, "9m59s"), (600, "10m"), (601, "10m"), (3 * 3600 - 1, "179m"),
    (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"), (8 * 3600 - 1, "7h59m"), (8 * 3600, "8h"),
    (48 * 3600 - 1, "47h"), (48 * 3600, "2d"), (49 * 3600, "2d1h"), (8 * 86400 - 1, "7d23h"),
    (8 * 86400, "8d"), (729 * 86400, "729d"), (730 * 86400, "2y"), (731 * 86400, "2y1d"),
    (8 * 365 * 86400 - 1, "7y364d"), (8 * 365 * 86400, "8y"), (20 * 365 * 86400, "20y"),
])
def test_human_duration(seconds: float, want: str) -> None:
    assert human_duration(seconds) == want


@pytest.mark.parametrize("seconds,want", [
    (-3, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"),
    (86399, "23h"), (86400, "1d"), (364 * 86400, "364d"), (365 * 86400, "1y"), (800 * 86400, "2y"),
])
def test_short_human_duration(seconds: float, want: str) -> None:
    assert short_human_duration(seconds) == want


# --- recorded upstream Tables ----------------------------------------------------------------

RECORDED = [
    ("api_v1_namespaces_default_pods", "Pod", "v1"),
    ("api_v1_namespaces_default_services", "Service", "v1"),
    ("api_v1_namespaces_default_endpoints", "Endpoints", "v1"),
    ("api_v1_namespaces_default_events", "Event", "v1"),
    ("api_v1_nodes", "Node", "v1"),
    ("apis_apps_v1_namespaces_default_deployments", "Deployment", "apps/v1"),
    ("apis_apps_v1_namespaces_default_replicasets", "ReplicaSet", "apps/v1"),
]


def _load(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def _without_descriptions(table: dict) -> dict:
    """The Table with every column description blanked: those are our own words by design
    (README, "What does not work yet"), everything else must be upstream's."""
    out = json.loads(json.dumps(table))
    for c in out.get("columnDefinitions") or []:
        assert isinstance(c.get("description"), str) and c["description"], c
        c["description"] = ""
    return out


def _assert_own_descriptions(got: dict, want: dict) -> None:
    """No column description is upstream's text."""
    upstream = {c["description"] for c in want.get("columnDefinitions") or []}
    ours = [c["description"] for c in got.get("columnDefinitions") or []]
    assert ours and not upstream.intersection(ours)


@pytest.mark.parametrize("name,kind,api_version", RECORDED)
def test_table_matches_recorded_upstream_table(name: str, kind: str, api_version: str) -> None:
    items = _load(f"list_{name}.json")["items"]
    want = _load(f"table_{name}.json")
    got = table_for(kind, api_version, items, resource_version=want["metadata"]["resourceVersion"], now=RECORDED_AT)
    assert got["kind"] == "Table" and got["apiVersion"] == "meta.k8s.io/v1"
    assert got["metadata"] == want["metadata"]
    assert _without_descriptions(got)["columnDefinitions"] == _without_descriptions(want)["columnDefinitions"]
    _assert_own_descriptions(got, want)
    assert [r["cells"] for r in got["rows"]] == [r["cells"] for r in want["rows"]]
    # Metadata is the default includeObject: PartialObjectMetadata with the whole ObjectMeta.
    assert [r["object"] for r in got["rows"]] == [r["object"] for r in want["rows"]]
    assert [sorted(r) for r in got["rows"]] == [sorted(r) for r in want["rows"]]
    assert _without_descriptions(got) == _without_descriptions(want)


def test_include_object_object_returns_full_objects_with_type_meta() -> None:
    items = _load("list_api_v1_namespaces_default_pods.json")["items"]
    want = _load("table_pods_includeObject.json")
    got = table_for("Pod", "v1", items, include_object="Object", resource_version="3699", now=RECORDED_AT)
    assert _without_descriptions(got) == _without_descriptions(want)
    _assert_own_descriptions(got, want)
    assert "kind" not in items[0]  # the caller's objects are not modified


def test_include_object_none_and_no_headers() -> None:
    items = _load("list_api_v1_namespaces_default_services.json")["items"]
    got = table_for("Service", "v1", items, include_object="None", no_headers=True, resource_version="9")
    assert got["columnDefinitions"] is None  # upstream serialises the nil slice as null
    assert all(set(r) == {"cells"} for r in got["rows"])
    assert got["metadata"] == {"resourceVersion": "9"}


def test_include_object_rejects_unknown_values() -> None:
    with pytest.raises(ValueError):
        table_for("Pod", "v1", [], include_object="Everything")


def test_continue_token_lands_in_table_metadata() -> None:
    got = table_for("Pod", "v1", [], resource_version="5", continue_token="abc", remaining_item_count=7)
    assert got["metadata"] == {"resourceVersion": "5", "continue": "abc", "remainingItemCount": 7}
    assert got["rows"] == []


def test_columns_for_returns_copies() -> None:
    cols = columns_for("Pod", "v1")
    cols[0]["name"] = "changed"
    assert columns_for("Pod", "v1")[0]["name"] == "Name"


# --- pods ------------------------------------------------------------------------------------

def pod(*, phase: str = "Running", statuses: list | None = None, init: list | None = None,
        init_statuses: list | None = None, containers: int = 1, **extra) -> dict:
    p = {"metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(30)},
         "spec": {"containers": [{"name": f"c{i}", "image": "img"} for i in range(containers)],
                  "nodeName": "node-1"},
         "status": {"phase": phase}}
    if init is not None:
        p["spec"]["initContainers"] = init
    if statuses is not None:
        p["status"]["containerStatuses"] = statuses
    if init_statuses is not None:
        p["status"]["initContainerStatuses"] = init_statuses
    for section, fields in extra.items():  # metadata=/spec=/status= add fields to that section
        p.setdefault(section, {}).update(fields)
    return p


def running(name: str = "c0", ready: bool = True, restarts: int = 0, **kw) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "started": True,
            "state": {"running": {"startedAt": ago(20)}}, **kw}


def waiting(reason: str, name: str = "c0", restarts: int = 0, **kw) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}, **kw}


def terminated(name: str = "c0", restarts: int = 0, **term) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"terminated": term}}


def tutorial_status(step: str, pod_name: str) -> tuple[str, str]:
    """(READY, STATUS) that kubectl printed for a pod in one tutorial step."""
    for line in (TUTORIAL / f"{step}.stdout").read_text().splitlines():
        cols = line.split()
        if cols and cols[0] == pod_name:
            return cols[1], cols[2]
    raise AssertionError(f"{pod_name} not in {step}")


def test_pod_statuses_seen_in_the_tutorial() -> None:
    creating = pod(phase="Pending", statuses=[waiting("ContainerCreating")])
    assert cells("Pod", "v1", creating)[1:3] == list(
        tutorial_status("05-get-pods-immediately", "kubernetes-bootcamp-f95c5b745-dzqdb"))
    backoff = pod(phase="Pending", statuses=[waiting("ImagePullBackOff")])
    assert cells("Pod", "v1", backoff)[1:3] == list(
        tutorial_status("33-get-pods-v10-3s", "kubernetes-bootcamp-7497bc6797-5b6tt"))
    scheduled = pod(phase="Pending")
    assert cells("Pod", "v1", scheduled)[1:3] == list(
        tutorial_status("25-get-pods-during-v2", "kubernetes-bootcamp-65df967b7f-ptjbz"))
    deleting = pod(statuses=[running()], metadata={"deletionTimestamp": ago(0), "deletionGracePeriodSeconds": 30})
    assert cells("Pod", "v1", deleting)[1:3] == list(
        tutorial_status("25-get-pods-during-v2", "kubernetes-bootcamp-f95c5b745-xfgk8"))
    assert cells("Pod", "v1", pod(statuses=[running()]))[1:3] == list(
        tutorial_status("35-get-pods-v10", "kubernetes-bootcamp-65df967b7f-6vcfz"))


@pytest.mark.parametrize("p,ready,status", [
    (pod(phase="Pending", statuses=[waiting("ErrImagePull")]), "0/1", "ErrImagePull"),
    (pod(statuses=[waiting("CrashLoopBackOff", restarts=2)]), "0/1", "CrashLoopBackOff"),
    (pod(phase="Running", statuses=[running(), running("c1", ready=False)], containers=2), "1/2", "Running"),
    (pod(statuses=[terminated(exitCode=2)]), "0/1", "ExitCode:2"),
    (pod(statuses=[terminated(exitCode=137, signal=9)]), "0/1", "Signal:9"),
    (pod(statuses=[terminated(exitCode=1, reason="Error")]), "0/1", "Error"),
    (pod(phase="Failed", status={"reason": "Evicted"}), "0/1", "Evicted"),
    (pod(phase="Pending", status={"conditions": [{"type": "PodScheduled", "status": "False",
                                                  "reason": "SchedulingGated"}]}), "0/1", "SchedulingGated"),
    # The last container decides: containers are walked back to front.
    (pod(statuses=[waiting("ImagePullBackOff"), terminated("c1", exitCode=0, reason="Completed")],
         containers=2), "0/2", "ImagePullBackOff"),
])
def test_pod_status_ladder(p: dict, ready: str, status: str) -> None:
    assert cells("Pod", "v1", p)[1:3] == [ready, status]


def test_pod_completed_but_a_container_still_runs() -> None:
    both = [terminated("c0", exitCode=0, reason="Completed"), running("c1")]
    statuses = list(reversed(both))  # c0 is walked last, so its "Completed" would win
    ready_pod = pod(statuses=statuses, containers=2,
                    status={"conditions": [{"type": "Ready", "status": "True"}]})
    assert cells("Pod", "v1", ready_pod)[1:3] == ["1/2", "Running"]
    assert cells("Pod", "v1", pod(statuses=statuses, containers=2))[1:3] == ["1/2", "NotReady"]


@pytest.mark.parametrize("init_statuses,status", [
    ([], "Running"),  # no init statuses yet: nothing overrides the phase
    ([{"name": "i0", "state": {"running": {}}}], "Init:0/2"),
    ([terminated("i0", exitCode=0), {"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}],
     "Init:1/2"),
    ([waiting("CrashLoopBackOff", name="i0")], "Init:CrashLoopBackOff"),
    ([terminated("i0", exitCode=1, reason="Error")], "Init:Error"),
    ([terminated("i0", exitCode=3)], "Init:ExitCode:3"),
    ([terminated("i0", exitCode=0), terminated("i1", exitCode=137, signal=9)], "Init:Signal:9"),
])
def test_pod_init_container_status(init_statuses: list, status: str) -> None:
    init = [{"name": "i0", "image": "busybox"}, {"name": "i1", "image": "busybox"}]
    p = pod(phase="Running" if not init_statuses else "Pending", init=init, init_statuses=init_statuses,
            statuses=[waiting("PodInitializing")] if init_statuses else [running()])
    assert cells("Pod", "v1", p)[2] == status


def test_pod_sidecar_counts_towards_ready_and_total() -> None:
    init = [{"name": "side", "image": "envoy", "restartPolicy": "Always"}, {"name": "setup", "image": "busybox"}]
    p = pod(init=init, init_statuses=[running("side", restarts=1), terminated("setup", exitCode=0)],
            statuses=[running()], status={"conditions": [{"type": "Initialized", "status": "True"}]})
    assert cells("Pod", "v1", p)[1:4] == ["2/2", "Running", "1"]


def test_pod_restarts_show_when_the_last_restart_happened() -> None:
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(150)}}
    older = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(4000)}}
    p = pod(statuses=[waiting("CrashLoopBackOff", restarts=3, lastState=last),
                      running("c1", restarts=2, lastState=older)], containers=2)
    assert cells("Pod", "v1", p)[1:4] == ["1/2", "CrashLoopBackOff", "5 (2m30s ago)"]
    no_date = pod(statuses=[running(restarts=4)])
    assert cells("Pod", "v1", no_date)[3] == "4"


def test_pod_deletion_rules() -> None:
    lost = pod(statuses=[running()], metadata={"deletionTimestamp": ago(1)}, status={"reason": "NodeLost"})
    assert cells("Pod", "v1", lost)[2] == "Unknown"
    done = pod(phase="Succeeded", statuses=[terminated(exitCode=0, reason="Completed")],
               metadata={"deletionTimestamp": ago(1)})
    assert cells("Pod", "v1", done)[2] == "Terminating"  # v1.28 (1.29+ would keep "Completed")


def test_pod_row_conditions_for_finished_pods() -> None:
    ok = table_for("Pod", "v1", [pod(phase="Succeeded", statuses=[terminated(exitCode=0, reason="Completed")])])
    assert ok["rows"][0]["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                            "message": "The pod has completed successfully."}]
    bad = table_for("Pod", "v1", [pod(phase="Failed", statuses=[terminated(exitCode=1, reason="Error")])])
    assert bad["rows"][0]["conditions"] == [{"type": "Completed", "status": "True", "reason": "Failed",
                                             "message": "The pod failed."}]
    assert "conditions" not in table_for("Pod", "v1", [pod(statuses=[running()])])["rows"][0]


def test_pod_wide_cells() -> None:
    p = pod(statuses=[running()],
            status={"podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}], "nominatedNodeName": "n2"},
            spec={"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]})
    p["status"]["conditions"] = [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]
    assert cells("Pod", "v1", p)[4:] == ["30s", "10.0.0.9", "node-1", "n2", "1/2"]
    bare = pod(phase="Pending")
    bare["spec"].pop("nodeName")
    assert cells("Pod", "v1", bare)[5:] == ["<none>", "<none>", "<none>", "<none>"]
    single = pod(statuses=[running()], status={"podIP": "10.0.0.7"})  # podIPs derived from podIP
    assert cells("Pod", "v1", single)[5] == "10.0.0.7"
    plural = pod(statuses=[running()], status={"podIPs": [{"ip": "fd00::7"}]})
    assert cells("Pod", "v1", plural)[5] == "fd00::7"


# --- workloads and networking ---------------------------------------------------------------

def test_deployment_and_replicaset_cells() -> None:
    template = {"spec": {"containers": [{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]}}
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In",
                                                                "values": ["fe", "be"]}]}
    d = {"metadata": {"name": "web", "creationTimestamp": ago(90)},
         "spec": {"replicas": 3, "selector": sel, "template": template},
         "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 1}}
    assert cells("Deployment", "apps/v1", d) == ["web", "2/3", 3, 1, "90s", "a,b", "ia,ib",
                                                 "app=web,tier in (be,fe)"]
    rs = {"metadata": {"name": "web-1", "creationTimestamp": ago(90)},
          "spec": {"replicas": 0, "selector": {}, "template": template}, "status": {}}
    assert cells("ReplicaSet", "apps/v1", rs) == ["web-1", 0, 0, 0, "90s", "a,b", "ia,ib", "<none>"]


def test_replicationcontroller_columns_and_cells() -> None:
    cols = columns_for("ReplicationController", "v1")
    assert [(c["name"], c["type"], c["priority"]) for c in cols] == [
        ("Name", "string", 0), ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
        ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]
    assert "Ready" in cols[3]["description"] and "ReplicationController" in cols[3]["description"]
    template = {"spec": {"containers": [{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]}}
    rc = {"metadata": {"name": "rc", "creationTimestamp": ago(150)},
          "spec": {"replicas": 3, "selector": {"tier": "fe", "app": "web"}, "template": template},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells("ReplicationController", "v1", rc) == ["rc", 3, 2, 1, "2m30s", "a,b", "ia,ib", "app=web,tier=fe"]
    rc = {"metadata": {"name": "empty", "creationTimestamp": ago(5)}, "spec": {}, "status": {}}
    assert cells("ReplicationController", "v1", rc) == ["empty", 0, 0, 0, "5s", "", "", "<none>"]


def svc(spec: dict, status: dict | None = None) -> dict:
    return {"metadata": {"name": "s", "creationTimestamp": ago(3700)}, "spec": spec, "status": status or {}}


@pytest.mark.parametrize("spec,status,want", [
    ({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
      "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}], "selector": {"k": "v", "a": "b"}},
     None, ["s", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "61m", "a=b,k=v"]),
    ({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}, None,
     ["s", "ClusterIP", "None", "<none>", "<none>", "61m", "<none>"]),
    ({"type": "NodePort", "clusterIPs": ["10.96.1.1"], "externalIPs": ["1.2.3.4", "5.6.7.8"],
      "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}, None,
     ["s", "NodePort", "10.96.1.1", "1.2.3.4,5.6.7.8", "80:30080/TCP", "61m", "<none>"]),
    ({"type": "LoadBalancer", "clusterIPs": ["10.96.1.2"], "ports": [{"port": 443, "nodePort": 31000,
                                                                      "protocol": "TCP"}]}, None,
     ["s", "LoadBalancer", "10.96.1.2", "<pending>", "443:31000/TCP", "61m", "<none>"]),
    ({"type": "LoadBalancer", "clusterIPs": ["10.96.1.2"], "externalIPs": ["9.9.9.9"]},
     {"loadBalancer": {"ingress": [{"ip": "8.8.8.8"}, {"hostname": "lb.example.com"}, {"ip": "8.8.8.8"}]}},
     ["s", "LoadBalancer", "10.96.1.2", "8.8.8.8,lb.example.com,9.9.9.9", "<none>", "61m", "<none>"]),
    ({"type": "ExternalName", "externalName": "db.example.com"}, None,
     ["s", "ExternalName", "<none>", "db.example.com", "<none>", "61m", "<none>"]),
])
def test_service_cells(spec: dict, status: dict | None, want: list) -> None:
    assert cells("Service", "v1", svc(spec, status)) == want


@pytest.mark.parametrize("subsets,want", [
    ([], "<none>"),
    ([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}], "10.0.0.1,10.0.0.2"),
    ([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}], "[fd00::1]:80"),
    ([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}],
     "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."),
    ([{"notReadyAddresses": [{"ip": "10.0.0.3"}], "ports": [{"port": 80}]}], ""),
])
def test_endpoints_cell(subsets: list, want: str) -> None:
    ep = {"metadata": {"name": "e", "creationTimestamp": ago(5)}, "subsets": subsets}
    assert cells("Endpoints", "v1", ep) == ["e", want, "5s"]


def test_endpointslice_cells() -> None:
    eps = {"metadata": {"name": "web-abc", "creationTimestamp": ago(5)}, "addressType": "IPv4",
           "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}, {"port": 9}],
           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]},
                         {"addresses": ["10.0.0.4"]}]}
    assert cells("EndpointSlice", "discovery.k8s.io/v1", eps) == [
        "web-abc", "IPv4", "80,named,* + 1 more...", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "5s"]
    empty = {"metadata": {"name": "x", "creationTimestamp": ago(5)}, "addressType": "IPv6"}
    assert cells("EndpointSlice", "discovery.k8s.io/v1", empty) == ["x", "IPv6", "<unset>", "<unset>", "5s"]


# --- cluster-scoped and the rest ------------------------------------------------------------

def test_node_cells() -> None:
    node = {"metadata": {"name": "n1", "creationTimestamp": ago(86400 * 3),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "",
                                    "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "1.1.1.1"},
                                     {"type": "ExternalIP", "address": "2.2.2.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.28.7", "osImage": "Debian"}}}
    assert cells("Node", "v1", node) == ["n1", "NotReady,SchedulingDisabled", "control-plane,master", "3d",
                                         "v1.28.7", "1.1.1.1", "2.2.2.2", "Debian", "<unknown>", "<unknown>"]
    bare = {"metadata": {"name": "n2", "creationTimestamp": ago(10)}}
    assert cells("Node", "v1", bare) == ["n2", "Unknown", "<none>", "10s", "", "<none>", "<none>",
                                         "<unknown>", "<unknown>", "<unknown>"]


def test_core_event_cells() -> None:
    ev = {"metadata": {"name": "p.1"}, "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
          "reason": "BackOff", "message": " Back-off pulling image \"x\"\n", "type": "Warning",
          "source": {"component": "kubelet", "host": "node-1"},
          "firstTimestamp": ago(300), "lastTimestamp": ago(20), "count": 7}
    assert cells("Event", "v1", ev) == ["20s", "Warning", "BackOff", "pod/p", "spec.containers{c}", "kubelet, node-1",
                                        "Back-off pulling image \"x\"", "5m", 7, "p.1"]
    # Series events take LAST SEEN and COUNT from the series; no lastTimestamp falls back to first.
    series = dict(ev, series={"count": 12, "lastObservedTime": ago(3)}, lastTimestamp=None)
    assert cells("Event", "v1", series)[0] == "3s" and cells("Event", "v1", series)[8] == 12
    single = {"metadata": {"name": "n.2"}, "involvedObject": {"kind": "Node"}, "reason": "Starting",
              "eventTime": (NOW - dt.timedelta(seconds=65)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              "reportingComponent": "kube-proxy", "firstTimestamp": None, "lastTimestamp": None}
    assert cells("Event", "v1", single) == ["65s", "", "Starting", "node", "", "kube-proxy", "", "65s", 1, "n.2"]


def test_events_v1_are_printed_like_core_events() -> None:
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "d.1"},
          "eventTime": (NOW - dt.timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
          "reportingController": "deployment-controller", "reportingInstance": "", "action": "Scale",
          "reason": "ScalingReplicaSet", "regarding": {"kind": "Deployment", "name": "web"},
          "note": "Scaled up replica set web-1 to 3", "type": "Normal",
          "series": {"count": 2, "lastObservedTime": (NOW - dt.timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
    t = table_for("Event", "events.k8s.io/v1", [ev], now=NOW)
    assert t["columnDefinitions"] == columns_for("Event", "v1")
    assert t["rows"][0]["cells"] == ["4s", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller",
                                     "Scaled up replica set web-1 to 3", "40s", 2, "d.1"]
    old_style = {"metadata": {"name": "d.2"}, "regarding": {"kind": "Pod", "name": "p"}, "reason": "Killing",
                 "deprecatedSource": {"component": "kubelet", "host": "node-1"},
                 "deprecatedFirstTimestamp": ago(600), "deprecatedLastTimestamp": ago(60), "deprecatedCount": 3}
    assert cells("Event", "events.k8s.io/v1", old_style)[:9] == ["60s", "", "Killing", "pod/p", "", "kubelet, node-1",
                                                                 "", "10m", 3]


def test_event_columns_in_upstream_order() -> None:
    cols = columns_for("Event", "v1")
    assert [(c["name"], c["priority"]) for c in cols] == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
        ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
    assert cols[-1]["format"] == "name"


def test_namespace_configmap_secret_serviceaccount_lease() -> None:
    md = {"name": "x", "creationTimestamp": ago(61)}
    assert cells("Namespace", "v1", {"metadata": md, "status": {"phase": "Terminating"}}) == ["x", "Terminating", "61s"]
    assert cells("ConfigMap", "v1", {"metadata": md, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}) == [
        "x", 3, "61s"]
    assert cells("ConfigMap", "v1", {"metadata": md}) == ["x", 0, "61s"]
    assert cells("Secret", "v1", {"metadata": md, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}) \
        == ["x", "kubernetes.io/tls", 2, "61s"]
    assert cells("ServiceAccount", "v1", {"metadata": md, "secrets": [{"name": "t"}]}) == ["x", 1, "61s"]
    assert cells("ServiceAccount", "v1", {"metadata": md}) == ["x", 0, "61s"]
    assert cells("Lease", "coordination.k8s.io/v1", {"metadata": md, "spec": {"holderIdentity": "node-1"}}) == [
        "x", "node-1", "61s"]
    assert cells("Lease", "coordination.k8s.io/v1", {"metadata": md, "spec": {}}) == ["x", "", "61s"]
    assert [c["name"] for c in columns_for("Secret", "v1")] == ["Name", "Type", "Data", "Age"]
    assert [c["name"] for c in columns_for("Lease", "coordination.k8s.io/v1")] == ["Name", "Holder", "Age"]


def test_kinds_without_a_printer_get_the_default_convertor() -> None:
    obj = {"metadata": {"name": "thing", "creationTimestamp": "2024-02-03T04:05:06Z"}}
    t = table_for("Widget", "example.com/v1", [obj, {"metadata": {"name": "new"}}], now=NOW)
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", "string", "name", 0), ("Created At", "date", "", 0)]
    assert [r["cells"] for r in t["rows"]] == [["thing", "2024-02-03T04:05:06Z"], ["new", "0001-01-01T00:00:00Z"]]


def test_missing_creation_timestamp_prints_unknown_age() -> None:
    assert cells("ConfigMap", "v1", {"metadata": {"name": "x"}}) == ["x", 0, "<unknown>"]


def test_large_lists_do_not_touch_the_input() -> None:
    base = _load("list_api_v1_namespaces_default_pods.json")["items"]
    items = [copy.deepcopy(base[i % len(base)]) for i in range(2000)]
    before = copy.deepcopy(items)
    t = table_for("Pod", "v1", items, now=RECORDED_AT)
    assert len(t["rows"]) == 2000 and items == before


# --- through the real kubectl ----------------------------------------------------------------

@pytest.mark.parametrize("binary", ["kubectl.1.33", "kubectl.1.28"])
def test_kubectl_get_prints_server_side_columns(api_server, ns, binary: str) -> None:
    kubectl = f"/usr/lib/google-cloud-sdk/bin/{binary}"
    api_server.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1", "--from-literal=b=2", check=True)
    api_server.kubectl("create", "service", "nodeport", "web", "--tcp=80:8080", "-n", ns, check=True)
    out = api_server.kubectl("get", "cm", "cfg", "-n", ns, binary=kubectl, check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "DATA", "AGE"] and out[1].split()[:2] == ["cfg", "2"]
    out = api_server.kubectl("get", "svc", "web", "-n", ns, "-o", "wide", binary=kubectl, check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    row = out[1].split()
    assert row[:2] == ["web", "NodePort"] and row[3] == "<none>" and row[4].startswith("80:") and row[6] == "app=web"
    # Several kinds at once: kubectl prefixes the name column (format "name") with the kind.
    out = api_server.kubectl("get", "svc,cm", "-n", ns, "--show-labels", binary=kubectl, check=True).stdout
    assert "service/web" in out and "configmap/cfg" in out and "LABELS" in out
