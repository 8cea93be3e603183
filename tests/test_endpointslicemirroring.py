"""EndpointSlice mirroring: hand-written Endpoints of a selector-less Service become EndpointSlices,
follow every update and go away with the Endpoints; skip-mirror and selector Services are left alone.

The server here runs controllers only — no node agent and no service proxy — so the
addresses below (TEST-NET-1, 192.0.2.0/24) are only ever written and read, never dialled.
"""
from __future__ import annotations

import json

import pytest
from conftest import create_namespace, start_server

from kubelite.controllers.endpointslicemirroring import CONTROLLER_NAME, reconcile
from kubelite.controllers.manager import REGISTRY

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME = "kubernetes.io/service-name"


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    """An API server with every controller; no agent, scheduler or proxy."""
    srv = start_server(tmp_path_factory.mktemp("mirror"), "--disable", "agent,scheduler,proxy")
    yield srv
    srv.stop()


@pytest.fixture
def mns(ctl, request):
    return create_namespace(ctl, request, "m")


def create(srv, ns: str, *objs: dict) -> None:
    srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                  "items": list(objs)}), check=True)


def service(name: str, selector: dict | None = None) -> dict:
    spec: dict = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def endpoints(name: str, ready: list[str], not_ready: list[str] = (), labels: dict | None = None,
              port: int = 8080) -> dict:
    subset: dict = {"addresses": [{"ip": ip} for ip in ready], "ports": [{"name": "http", "port": port,
                                                                          "protocol": "TCP"}]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "labels": labels or {}},
            "subsets": [subset]}


def mirrored_slices(srv, ns: str, name: str) -> list[dict]:
    sel = f"{SERVICE_NAME}={name},{MANAGED_BY}={CONTROLLER_NAME}"
    return srv.kjson("get", "endpointslices", "-n", ns, "-l", sel)["items"]


def addresses(slices: list[dict]) -> dict[str, bool]:
    return {a: e["conditions"]["ready"] for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]}


# -- pure ----------------------------------------------------------------------------------
def _ep(subsets: list[dict], **md) -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "svc", "namespace": "ns", "uid": "u1", **md}, "subsets": subsets}


def test_reconcile_groups_by_ports_and_address_type_and_skips_non_ips():
    ep = _ep([{"addresses": [{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}, {"ip": "not-an-ip"}],
               "notReadyAddresses": [{"ip": "192.0.2.2"}], "ports": [{"port": 80, "protocol": "TCP"}]},
              {"addresses": [{"ip": "192.0.2.3"}], "ports": [{"port": 81, "protocol": "UDP", "name": "dns"}]}],
             labels={"team": "a"}, annotations={"note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    plan = reconcile(ep, [])
    assert not plan.update and not plan.delete
    got = {(s["addressType"], s["ports"][0]["port"]): s for s in plan.create}
    assert set(got) == {("IPv4", 80), ("IPv6", 80), ("IPv4", 81)}
    assert addresses([got[("IPv4", 80)]]) == {"192.0.2.1": True, "192.0.2.2": False}
    s = got[("IPv4", 81)]
    assert s["ports"] == [{"name": "dns", "port": 81, "protocol": "UDP"}]
    assert s["metadata"]["labels"] == {"team": "a", SERVICE_NAME: "svc", MANAGED_BY: CONTROLLER_NAME}
    assert s["metadata"]["annotations"] == {"note": "x"}
    assert s["metadata"]["generateName"] == "svc-"
    owner = s["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Endpoints", "svc", "u1", True)


def test_reconcile_is_quiet_when_slices_match_and_reuses_a_slice_whose_ports_changed():
    ep = _ep([{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}])
    made = reconcile(ep, []).create[0]
    made["metadata"] = {**made["metadata"], "name": "svc-abcde", "resourceVersion": "7"}
    made["metadata"].pop("generateName")
    quiet = reconcile(ep, [made])
    assert (quiet.create, quiet.update, quiet.delete) == ([], [], [])
    moved = _ep([{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 90, "protocol": "TCP"}]}])
    plan = reconcile(moved, [made])
    assert not plan.create and not plan.delete
    assert plan.update[0]["metadata"]["name"] == "svc-abcde" and plan.update[0]["ports"][0]["port"] == 90


def test_reconcile_caps_addresses_per_subset():
    ep = _ep([{"addresses": [{"ip": f"192.0.2.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}])
    plan = reconcile(ep, [], max_per_subset=3)
    assert len(plan.create[0]["endpoints"]) == 3


# -- against a server ---------------------------------------------------------------------
def test_endpointslice_mirroring_is_a_registered_controller():
    assert "endpointslicemirroring" in [s.name for s in REGISTRY]


def test_endpointslicemirroring_should_mirror_a_custom_endpoints_resource_through_create_update_and_delete(ctl, mns):
    create(ctl, mns, service("custom"), endpoints("custom", ["192.0.2.10"], ["192.0.2.11"], labels={"team": "a"}))

    def mirrored():
        slices = mirrored_slices(ctl, mns, "custom")
        return len(slices) == 1 and addresses(slices) == {"192.0.2.10": True, "192.0.2.11": False} and slices[0]
    s = ctl.wait_for(mirrored, 30, what="mirrored slice")
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert s["metadata"]["labels"][MANAGED_BY] == CONTROLLER_NAME
    assert s["metadata"]["labels"][SERVICE_NAME] == "custom"
    assert s["metadata"]["labels"]["team"] == "a"
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"

    ctl.kubectl("replace", "-n", mns, "-f", "-", input=json.dumps(endpoints("custom", ["192.0.2.12"], port=9090)),
                check=True)

    def updated():
        slices = mirrored_slices(ctl, mns, "custom")
        return len(slices) == 1 and addresses(slices) == {"192.0.2.12": True} \
            and slices[0]["ports"][0]["port"] == 9090
    ctl.wait_for(updated, 30, what="slice follows the update")

    ctl.kubectl("delete", "endpoints", "custom", "-n", mns, check=True)
    ctl.wait_for(lambda: mirrored_slices(ctl, mns, "custom") == [], 30, what="slice deleted with its Endpoints")


def test_skip_mirror_and_selector_services_are_not_mirrored(ctl, mns):
    create(ctl, mns, service("opted-out"),
           endpoints("opted-out", ["192.0.2.20"], labels={"endpointslice.kubernetes.io/skip-mirror": "true"}),
           # Endpoints first: once its selector Service exists, the Endpoints controller owns the name.
           endpoints("selected", ["192.0.2.21"]), service("selected", selector={"app": "none"}),
           endpoints("no-service", ["192.0.2.22"]),
           service("witness"), endpoints("witness", ["192.0.2.23"]))
    # The witness is mirrored; by then the others have been considered too.
    ctl.wait_for(lambda: mirrored_slices(ctl, mns, "witness"), 30, what="witness mirrored")
    for name in ("opted-out", "selected", "no-service"):
        assert mirrored_slices(ctl, mns, name) == [], name
    # A Service that gains a selector loses its mirrored slices.
    ctl.kubectl("patch", "service", "witness", "-n", mns, "-p", '{"spec": {"selector": {"app": "x"}}}', check=True)
    ctl.wait_for(lambda: mirrored_slices(ctl, mns, "witness") == [], 30, what="slices of a selector Service removed")


def test_removing_skip_mirror_starts_mirroring(ctl, mns):
    create(ctl, mns, service("late"),
           endpoints("late", ["192.0.2.30"], labels={"endpointslice.kubernetes.io/skip-mirror": "true"}))
    ctl.kubectl("label", "endpoints", "late", "-n", mns, "endpointslice.kubernetes.io/skip-mirror-", check=True)
    ctl.wait_for(lambda: addresses(mirrored_slices(ctl, mns, "late")) == {"192.0.2.30": True}, 30, what="mirrored")


def test_the_kubernetes_service_is_not_mirrored(ctl):
    ctl.wait_for(lambda: ctl.kjson("get", "endpointslices", "kubernetes", "-n", "default"), 30, what="kubernetes slice")
    assert mirrored_slices(ctl, "default", "kubernetes") == []
