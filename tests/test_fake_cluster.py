"""`kubelite server --runtime fake` as upstream's kwok: loopback-only pod addresses, pods that
behave as their annotations say (exit, crash-loop, succeed, never become ready), and the
node's own rules on fake pods (activeDeadlineSeconds, host port admission).

Nothing here dials a pod: the assertions read the API. The safety test proves the point of
the first section — every address a fake pod, its Endpoints or its EndpointSlices carry is
in 127.0.0.0/8, so nothing that might dial one could send a packet off the machine.
"""
from __future__ import annotations

import ipaddress
import json
import socket

import pytest
from conftest import create_namespace, start_server
from nodeharness import apply, condition, container_status, events_text, get_pod, pod

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
SERVICE_RANGE = ipaddress.ip_network("127.96.0.0/12")  # every userspace service block
P = "fake.kubelite.dev/"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("fake"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def fns(request, fake):
    name = create_namespace(fake, request, "f")
    yield name
    fake.kubectl("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force", "--wait=true", timeout=60)


def annotated(name: str, annotations: dict[str, str], **kw) -> dict:
    """A pod manifest carrying fake-runtime annotations."""
    p = pod(name, **kw)
    p["metadata"]["annotations"] = annotations
    return p


def phase(srv, ns: str, name: str) -> str:
    return get_pod(srv, ns, name).get("status", {}).get("phase", "")


def node_name(srv) -> str:
    return srv.kjson("get", "nodes")["items"][0]["metadata"]["name"]


# -- safety --------------------------------------------------------------------------------
def _in_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip) in LOOPBACK


@pytest.mark.parametrize("network", [(), ("--network", "host"), ("--network", "netns")],
                         ids=["default", "host", "netns"])
def test_fake_pods_endpoints_and_slices_only_carry_loopback_addresses(tmp_path, request, network):
    srv = start_server(tmp_path, "--runtime", "fake", *network)
    try:
        ns = create_namespace(srv, request, "safe")
        node = srv.kjson("get", "nodes")["items"][0]
        cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
        assert cidr.subnet_of(LOOPBACK) and not cidr.overlaps(SERVICE_RANGE)
        assert node["spec"]["podCIDRs"] == [str(cidr)]
        labels = {"app": "web"}
        container = {"name": "web", "image": "gcr.io/google-samples/kubernetes-bootcamp:v1",
                     "ports": [{"containerPort": 8080, "name": "http"}],
                     "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}}
        apply(srv, ns, deploy, svc)

        def pods_with_ips():
            items = srv.kjson("get", "pods", "-n", ns)["items"]
            ready = [p for p in items if condition(p, "Ready") == "True" and p["status"].get("podIP")]
            return len(ready) == 3 and ready
        pods = srv.wait_for(pods_with_ips, 60, what="3 Ready fake pods with IPs")
        for p in pods:
            ips = [p["status"]["podIP"]] + [x["ip"] for x in p["status"].get("podIPs") or []]
            assert all(_in_loopback(ip) and ipaddress.ip_address(ip) in cidr for ip in ips), ips
            assert _in_loopback(p["status"]["hostIP"])

        def endpoint_addresses():
            ep = srv.kjson("get", "endpoints", "web", "-n", ns)
            addrs = [a["ip"] for s in ep.get("subsets") or []
                     for a in (s.get("addresses") or []) + (s.get("notReadyAddresses") or [])]
            return len(addrs) == 3 and addrs
        assert all(_in_loopback(ip) for ip in srv.wait_for(endpoint_addresses, 30, what="3 endpoint addresses"))

        def slice_addresses():
            slices = srv.kjson("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web")["items"]
            addrs = [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]]
            return len(addrs) == 3 and addrs
        assert all(_in_loopback(ip) for ip in srv.wait_for(slice_addresses, 30, what="3 slice addresses"))
    finally:
        srv.stop()


# -- behaviour from annotations -----------------------------------------------------------
def test_crashing_fake_container_goes_into_crashloopbackoff_and_restart_count_rises(fake, fns):
    apply(fake, fns, annotated("crash", {P + "exit-after": "200ms", P + "exit-code": "1"}))

    def backing_off():
        cs = container_status(fake, fns, "crash")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return waiting.get("reason") == "CrashLoopBackOff" and cs.get("restartCount", 0) >= 1 and cs
    cs = fake.wait_for(backing_off, 30, what="CrashLoopBackOff")
    last = cs["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert phase(fake, fns, "crash") == "Running"  # restartPolicy Always never ends the pod
    first = cs["restartCount"]
    fake.wait_for(lambda: container_status(fake, fns, "crash").get("restartCount", 0) > first, 60,
                  what="restartCount to rise after the back-off")
    assert "Back-off restarting failed container c" in events_text(fake, fns, "crash")


def test_fake_pod_with_restart_policy_never_and_exit_code_0_succeeds(fake, fns):
    apply(fake, fns, annotated("done", {P + "exit-after": "100ms"}, spec={"restartPolicy": "Never"}))
    fake.wait_for(lambda: phase(fake, fns, "done") == "Succeeded", 30, what="Succeeded")
    cs = container_status(fake, fns, "done")
    assert (cs["state"]["terminated"]["exitCode"], cs["state"]["terminated"]["reason"]) == (0, "Completed")
    assert cs["restartCount"] == 0


def test_fake_pod_with_restart_policy_never_and_exit_code_1_fails(fake, fns):
    apply(fake, fns, annotated("bad", {P + "exit-after": "100ms", P + "exit-code": "1"},
                               spec={"restartPolicy": "Never"}))
    fake.wait_for(lambda: phase(fake, fns, "bad") == "Failed", 30, what="Failed")
    assert container_status(fake, fns, "bad")["state"]["terminated"]["exitCode"] == 1


def test_never_ready_fake_pod_stays_running_and_not_ready(fake, fns):
    apply(fake, fns, annotated("lazy", {P + "never-ready": "true"}),
          annotated("lazy-probed", {P + "never-ready": "true"},
                    readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1}))
    fake.wait_for(lambda: container_status(fake, fns, "lazy-probed").get("started") is True, 30, what="started")
    # A pod created afterwards becoming Ready shows time has passed for the first two.
    apply(fake, fns, pod("eager"))
    fake.wait_for(lambda: condition(get_pod(fake, fns, "eager"), "Ready") == "True", 30, what="eager Ready")
    for name in ("lazy", "lazy-probed"):
        p = get_pod(fake, fns, name)
        assert p["status"]["phase"] == "Running"
        assert condition(p, "Ready") == "False" and condition(p, "ContainersReady") == "False"
        assert p["status"]["containerStatuses"][0]["ready"] is False
        assert "running" in p["status"]["containerStatuses"][0]["state"]


def test_probes_of_fake_pods_are_answered_without_dialling(fake, fns):
    # A probe that dialled would be refused here: nothing listens on this loopback port.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = {"httpGet": {"host": "127.0.0.1", "port": port, "path": "/"}, "periodSeconds": 1}
    apply(fake, fns, pod("probed", readinessProbe=probe, livenessProbe=dict(probe, failureThreshold=1),
                         lifecycle={"postStart": {"httpGet": {"host": "127.0.0.1", "port": port}}}))
    fake.wait_for(lambda: condition(get_pod(fake, fns, "probed"), "Ready") == "True", 30, what="probed Ready")
    assert container_status(fake, fns, "probed")["restartCount"] == 0
    assert "Unhealthy" not in events_text(fake, fns, "probed")


def test_init_containers_of_fake_pods_complete(fake, fns):
    p = pod("init", spec={"initContainers": [{"name": "setup", "image": "gcr.io/google-samples/kubernetes-bootcamp:v1"}]})
    apply(fake, fns, p)
    fake.wait_for(lambda: condition(get_pod(fake, fns, "init"), "Ready") == "True", 30, what="Ready after init")
    init = get_pod(fake, fns, "init")["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 0


# -- node rules ----------------------------------------------------------------------------
def test_pods_should_allow_activedeadlineseconds_to_be_updated(fake, fns):
    apply(fake, fns, pod("deadline"))
    fake.wait_for(lambda: phase(fake, fns, "deadline") == "Running", 30, what="Running")
    fake.kubectl("patch", "pod", "deadline", "-n", fns, "-p", json.dumps({"spec": {"activeDeadlineSeconds": 1}}),
                 check=True)

    def failed():
        st = get_pod(fake, fns, "deadline")["status"]
        return st.get("phase") == "Failed" and st
    st = fake.wait_for(failed, 30, what="DeadlineExceeded")
    assert st["reason"] == "DeadlineExceeded"
    assert st["message"] == "Pod was active on the node longer than the specified deadline"
    fake.wait_for(lambda: "terminated" in container_status(fake, fns, "deadline").get("state", {}), 30,
                  what="container stopped")
    assert "DeadlineExceeded" in events_text(fake, fns, "deadline")
    # It stays failed: the container is not restarted.
    assert container_status(fake, fns, "deadline")["restartCount"] == 0


def test_pod_with_active_deadline_from_the_start_fails(fake, fns):
    apply(fake, fns, pod("short", spec={"activeDeadlineSeconds": 1}))
    fake.wait_for(lambda: get_pod(fake, fns, "short")["status"].get("reason") == "DeadlineExceeded", 30,
                  what="DeadlineExceeded")
    assert phase(fake, fns, "short") == "Failed"


def test_node_refuses_a_pod_whose_host_port_is_taken(fake, fns):
    node = node_name(fake)
    on_node = {"nodeName": node}
    apply(fake, fns, pod("first", ports=[{"containerPort": 8080, "hostPort": 18080}], spec=on_node))
    fake.wait_for(lambda: phase(fake, fns, "first") == "Running", 30, what="first Running")
    apply(fake, fns, pod("second", ports=[{"containerPort": 8080, "hostPort": 18080, "hostIP": "127.0.0.5"}],
                         spec=on_node),
          pod("udp", ports=[{"containerPort": 8080, "hostPort": 18080, "protocol": "UDP"}], spec=on_node))

    def refused():
        st = get_pod(fake, fns, "second")["status"]
        return st.get("phase") == "Failed" and st
    st = fake.wait_for(refused, 30, what="second refused")
    assert st["reason"] == "NodePorts"
    assert st["message"] == ("Pod was rejected: Predicate NodePorts failed: "
                             "node(s) didn't have free ports for the requested pod ports")
    assert not st.get("containerStatuses")
    assert "NodePorts" in events_text(fake, fns, "second")
    # Another protocol on the same port is no conflict.
    fake.wait_for(lambda: phase(fake, fns, "udp") == "Running", 30, what="udp Running")
    # Once the holder is gone the port is free again for a new pod.
    fake.kubectl("delete", "pod", "first", "-n", fns, "--wait=true", check=True, timeout=60)
    apply(fake, fns, pod("third", ports=[{"containerPort": 8080, "hostPort": 18080}], spec=on_node))
    fake.wait_for(lambda: phase(fake, fns, "third") == "Running", 30, what="third Running")
    assert phase(fake, fns, "second") == "Failed"
