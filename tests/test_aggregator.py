"""API aggregation (upstream test/e2e/apimachinery/aggregator.go, adapted): an extension API
server made by the test, behind a selector-less Service with a hand-written EndpointSlice to
127.0.0.1, registered with an APIService; used with kubectl 1.33 and 1.28 and the Python
client, through discovery, the proxy and the availability controller."""
from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from aggregatorkit import GROUP, GV, PROXY_CN, VERSION, SampleAPIServer
from conftest import API_ONLY, KUBECTL, KUBECTL_OLD, Server, create_namespace, free_port, start_server
from kubernetes import client, config
from kubernetes.client.rest import ApiException

APISERVICE = f"{VERSION}.{GROUP}"
SERVICE = "sample-api"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> Iterator[Server]:
    """An API server alone: Services and EndpointSlices are written by hand here."""
    s = start_server(tmp_path_factory.mktemp("aggregator"), *API_ONLY)
    yield s
    s.stop()


def apply(srv: Server, obj: dict, binary: str = KUBECTL) -> None:
    """kubectl apply of one object."""
    srv.kubectl("apply", "-f", "-", input=json.dumps(obj), binary=binary, check=True)


def apiservice(ns: str, ca_bundle: str) -> dict:
    """The sample server's APIService, as the e2e spec registers it."""
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
            "spec": {"group": GROUP, "version": VERSION, "caBundle": ca_bundle,
                     "service": {"namespace": ns, "name": SERVICE, "port": 7443},
                     "groupPriorityMinimum": 2000, "versionPriority": 200}}


def service(ns: str) -> dict:
    """A Service without a selector: its endpoints are ours to write."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": ns},
            "spec": {"ports": [{"name": "https", "port": 7443, "targetPort": 443, "protocol": "TCP"}]}}


def endpoint_slice(ns: str, port: int, port_name: str = "https") -> dict:
    """The Service's endpoint: 127.0.0.1 at ``port``."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{SERVICE}-1", "namespace": ns, "labels": {"kubernetes.io/service-name": SERVICE}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}]}


def available(srv: Server) -> tuple[str, str, str] | None:
    """(status, reason, message) of the APIService's Available condition."""
    p = srv.kubectl("get", "apiservice", APISERVICE, "-o", "json")
    if p.returncode != 0:
        return None
    for c in json.loads(p.stdout).get("status", {}).get("conditions", []):
        if c["type"] == "Available":
            return c["status"], c.get("reason", ""), c.get("message", "")
    return None


def wait_available(srv: Server, status: str, reason: str) -> tuple[str, str, str]:
    """Poll until the Available condition has this status and reason."""
    return srv.wait_for(lambda: (a := available(srv)) and a[:2] == (status, reason) and a,
                        what=f"Available={status} ({reason})")


def admin_tls(srv: Server) -> ssl.SSLContext:
    """A TLS context with the admin's client certificate, trusting the cluster CA."""
    kc = srv.kjson("config", "view", "--raw")
    user = kc["users"][0]["user"]
    import base64
    import tempfile
    d = tempfile.mkdtemp()
    cert, key = f"{d}/c.crt", f"{d}/c.key"
    with open(cert, "wb") as f:
        f.write(base64.b64decode(user["client-certificate-data"]))
    with open(key, "wb") as f:
        f.write(base64.b64decode(user["client-key-data"]))
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    return ctx


def raw(srv: Server, path: str, accept: str = "application/json",
        headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET a path with the admin's client certificate: (status, body)."""
    ctx = admin_tls(srv)
    req = urllib.request.Request(srv.url + path, headers={"Accept": accept, **(headers or {})})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_should_be_able_to_support_the_1_17_sample_api_server_using_the_current_aggregator(srv, request):
    ns = create_namespace(srv, request, "agg")
    ext = SampleAPIServer(f"{SERVICE}.{ns}.svc", srv.data_dir / "tls" / "ca.crt").start()
    try:
        # The APIService comes first: nothing behind it yet.
        apply(srv, apiservice(ns, ext.ca_bundle))
        st = wait_available(srv, "False", "ServiceNotFound")
        assert st[2] == f'service/{SERVICE} in "{ns}" is not present'
        out = srv.kubectl("get", "apiservice", APISERVICE, check=True).stdout.splitlines()
        assert out[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
        assert out[1].split()[:4] == [APISERVICE, f"{ns}/{SERVICE}", "False", "(ServiceNotFound)"]
        # The group is listed in /apis from its APIService, but nothing is proxied yet.
        p = srv.kubectl("get", "flunders", "-n", ns)
        assert p.returncode != 0

        apply(srv, service(ns))
        st = wait_available(srv, "False", "EndpointsNotFound")
        assert st[2] == f'cannot find endpointslices for service/{SERVICE} in "{ns}"'

        apply(srv, endpoint_slice(ns, ext.port, port_name="other"))
        st = wait_available(srv, "False", "MissingEndpoints")
        assert st[2] == f'endpointslices for service/{SERVICE} in "{ns}" have no addresses with port name "https"'

        apply(srv, endpoint_slice(ns, ext.port))
        st = wait_available(srv, "True", "Passed")
        assert st[2] == "all checks passed"
        out = srv.kubectl("get", "apiservice", APISERVICE, check=True).stdout.splitlines()
        assert out[1].split()[:3] == [APISERVICE, f"{ns}/{SERVICE}", "True"]

        # Discovery, legacy and aggregated, lists the extension's group and resources.
        srv.wait_for(lambda: "flunders" in srv.kubectl("api-resources", "--api-group", GROUP).stdout,
                     what="flunders in discovery")
        rows = srv.kubectl("api-resources", "--api-group", GROUP, check=True).stdout.splitlines()
        assert rows[1].split() == ["flunders", "fl", GV, "true", "Flunder"]
        groups = json.loads(srv.kubectl("get", "--raw", "/apis", check=True).stdout)["groups"]
        wardle = next(g for g in groups if g["name"] == GROUP)
        assert wardle["preferredVersion"] == {"groupVersion": GV, "version": VERSION}
        names = [g["name"] for g in groups]
        assert names.index("apiextensions.k8s.io") < names.index(GROUP)  # priority 2000 sorts after built-ins
        group = json.loads(srv.kubectl("get", "--raw", f"/apis/{GROUP}", check=True).stdout)
        assert group["kind"] == "APIGroup" and group["versions"] == [{"groupVersion": GV, "version": VERSION}]
        code, body = raw(srv, "/apis", AGGREGATED)
        assert code == 200
        agg = next(i for i in json.loads(body)["items"] if i["metadata"]["name"] == GROUP)
        res = agg["versions"][0]["resources"][0]
        assert (res["resource"], res["scope"], res["responseKind"]["kind"], res["shortNames"]) == \
               ("flunders", "Namespaced", "Flunder", ["fl"])
        assert res["subresources"][0]["subresource"] == "status"

        # OpenAPI v3 lists the group/version and serves the extension's document: kubectl explain.
        root = json.loads(srv.kubectl("get", "--raw", "/openapi/v3", check=True).stdout)["paths"]
        assert root[f"apis/{GV}"] == {"serverRelativeURL": f"/openapi/v3/apis/{GV}"}
        assert "apis/apps/v1" in root
        out = srv.kubectl("explain", "flunders", check=True).stdout
        assert "KIND:       Flunder" in out and "VERSION:    v1alpha1" in out
        assert "A Flunder is the sample API server's example resource." in out
        out = srv.kubectl("explain", "flunders.spec", check=True).stdout
        assert "reference\t<string>" in out and "Another flunder's name." in out

        # Create and read through the proxy with kubectl.
        flunder = {"apiVersion": GV, "kind": "Flunder", "metadata": {"name": "rest-flunder", "namespace": ns},
                   "spec": {}}
        p = srv.kubectl("create", "-f", "-", input=json.dumps(flunder), check=True)
        assert p.stdout.strip() == f"flunder.{GROUP}/rest-flunder created"
        out = srv.kubectl("get", "flunders", "-n", ns, check=True).stdout.splitlines()
        assert out[0].split() == ["NAME", "CREATED", "AT"]
        assert out[1].split()[0] == "rest-flunder"
        got = srv.kjson("get", f"flunders.{GROUP}", "rest-flunder", "-n", ns)
        assert got["metadata"]["namespace"] == ns and got["kind"] == "Flunder"

        # The extension saw who asked, in the front proxy's headers, and no credentials.
        who = srv.kubectl("auth", "whoami", "-o", "json", check=True)
        user = json.loads(who.stdout)["status"]["userInfo"]
        seen = [r for r in ext.seen("/flunders") if r["method"] == "POST"]
        assert seen, "the create reached the extension"
        h = seen[-1]["headers"]
        assert seen[-1]["client_cn"] == PROXY_CN
        assert h["x-remote-user"] == [user["username"]]
        assert set(user["groups"]) <= set(h["x-remote-group"])
        assert "authorization" not in h

        # An impersonated user reaches the extension with its groups and extra values.
        apply(srv, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": f"{ns}-flunder-reader"},
                    "rules": [{"apiGroups": [GROUP], "resources": ["flunders"], "verbs": ["get", "list"]}]})
        apply(srv, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": f"{ns}-flunder-reader"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": f"{ns}-flunder-reader"},
                    "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"{ns}-devs"}]})
        as_jane = {"Impersonate-User": "jane", "Impersonate-Group": f"{ns}-devs",
                   "Impersonate-Extra-Reason": "on-call"}
        code, body = srv.wait_for(lambda: (r := raw(srv, f"/apis/{GV}/namespaces/{ns}/flunders", headers=as_jane))
                                  [0] == 200 and r, what="jane allowed to list flunders")
        assert [i["metadata"]["name"] for i in json.loads(body)["items"]] == ["rest-flunder"]
        h = [r for r in ext.seen("/flunders") if r["method"] == "GET"][-1]["headers"]
        assert h["x-remote-user"] == ["jane"]
        assert set(h["x-remote-group"]) == {f"{ns}-devs", "system:authenticated"}
        assert h["x-remote-extra-reason"] == ["on-call"]
        assert not any(k.startswith("impersonate-") for k in h)
        code, _ = raw(srv, f"/apis/{GV}/namespaces/{ns}/flunders", headers={**as_jane, "Impersonate-Group": "nobody"})
        assert code == 403  # authorized here before anything is forwarded

        # A watch is passed through as the extension streams it.
        p = srv.kubectl("get", "--raw", f"/apis/{GV}/namespaces/{ns}/flunders?watch=1", check=True)
        events = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "rest-flunder")]

        # The endpoint moves to a port nobody listens on: the discovery check fails.
        dead = free_port()
        apply(srv, endpoint_slice(ns, dead))
        st = wait_available(srv, "False", "FailedDiscoveryCheck")
        url = f"https://127.0.0.1:{dead}/apis/{GV}"
        assert st[2] == (f"failing or missing response from {url}: Get \"{url}\": dial tcp 127.0.0.1:{dead}: "
                         "connect: connection refused")
        p = srv.kubectl("get", "flunders", "-n", ns)
        assert p.returncode != 0
        assert "the server is currently unable to handle the request" in p.stderr

        # Back again, then the APIService goes and so does its group.
        apply(srv, endpoint_slice(ns, ext.port))
        wait_available(srv, "True", "Passed")
        srv.kubectl("delete", "apiservice", APISERVICE, check=True)
        srv.wait_for(lambda: GROUP not in srv.kubectl("get", "--raw", "/apis", check=True).stdout,
                     what="the group gone from /apis")
    finally:
        srv.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")
        srv.kubectl("delete", "clusterrole,clusterrolebinding", f"{ns}-flunder-reader", "--ignore-not-found")
        ext.stop()


def test_extension_apiserver_authentication_is_published(srv):
    cm = srv.wait_for(lambda: (p := srv.kubectl("get", "configmap", "-n", "kube-system",
                                                "extension-apiserver-authentication", "-o", "json")).returncode == 0
                      and json.loads(p.stdout), what="the ConfigMap")
    ca = (srv.data_dir / "tls" / "ca.crt").read_text()
    assert cm["data"] == {
        "client-ca-file": ca, "requestheader-client-ca-file": ca,
        "requestheader-allowed-names": f'["{PROXY_CN}"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-uid-headers": '["X-Remote-Uid"]',
        "requestheader-username-headers": '["X-Remote-User"]'}


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_extension_resources_with_kubectl_and_the_python_client(srv, request, binary):
    ns = create_namespace(srv, request, "aggc")
    ext = SampleAPIServer(f"{SERVICE}.{ns}.svc", srv.data_dir / "tls" / "ca.crt").start()
    api = config.new_client_from_config(config_file=srv.kubeconfig)
    try:
        apply(srv, service(ns), binary)
        apply(srv, endpoint_slice(ns, ext.port), binary)
        apply(srv, apiservice(ns, ext.ca_bundle), binary)
        wait_available(srv, "True", "Passed")
        srv.wait_for(lambda: "flunders" in srv.kubectl("api-resources", "--api-group", GROUP, binary=binary).stdout,
                     what="flunders in discovery")
        co = client.CustomObjectsApi(api)
        co.create_namespaced_custom_object(GROUP, VERSION, ns, "flunders",
                                           {"apiVersion": GV, "kind": "Flunder", "metadata": {"name": "py"}})
        items = co.list_namespaced_custom_object(GROUP, VERSION, ns, "flunders")["items"]
        assert [i["metadata"]["name"] for i in items] == ["py"]
        out = srv.kubectl("get", "fl", "-n", ns, binary=binary, check=True).stdout.splitlines()
        assert out[1].split()[0] == "py"
        out = srv.kubectl("explain", "flunders.spec.reference", binary=binary, check=True).stdout
        assert "Another flunder's name." in out
        svc = client.ApiregistrationV1Api(api).read_api_service(APISERVICE)
        assert svc.spec.service.name == SERVICE and svc.spec.service.port == 7443
        cond = next(c for c in svc.status.conditions if c.type == "Available")
        assert (cond.status, cond.reason) == ("True", "Passed")
        with pytest.raises(ApiException) as e:
            co.get_namespaced_custom_object(GROUP, VERSION, ns, "flunders", "nope")
        assert e.value.status == 404
    finally:
        srv.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")
        api.close()
        ext.stop()


def test_local_apiservices_are_listed_as_available(srv):
    out = srv.kubectl("get", "apiservices", check=True).stdout.splitlines()
    rows = {r.split()[0]: r.split()[1:3] for r in out[1:]}
    for name in ("v1.", "v1.apps", "v1.apiregistration.k8s.io", "v1.apiextensions.k8s.io", "v1.rbac.authorization.k8s.io"):
        assert rows[name] == ["Local", "True"], name
    core = srv.kjson("get", "apiservice", "v1.")
    assert core["spec"] == {"group": "", "version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}
    assert core["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    cond = core["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == \
           ("Available", "True", "Local", "Local APIServices are always available")
    # A deleted local APIService is registered again.
    uid = srv.kjson("get", "apiservice", "v1.batch")["metadata"]["uid"]
    srv.kubectl("delete", "apiservice", "v1.batch", check=True)
    srv.wait_for(lambda: (p := srv.kubectl("get", "apiservice", "v1.batch", "-o", "json")).returncode == 0
                 and json.loads(p.stdout)["metadata"]["uid"] != uid, what="v1.batch back")


def test_crd_groups_get_their_own_local_apiservice(srv):
    group = f"crdagg{int(time.time() * 1000) % 100000}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gizmos.{group}"},
           "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "gizmos", "kind": "Gizmo"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    apply(srv, crd)
    name = f"v1.{group}"
    got = srv.wait_for(lambda: (p := srv.kubectl("get", "apiservice", name, "-o", "json")).returncode == 0
                       and json.loads(p.stdout), what="the CRD group's APIService")
    assert got["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
    assert (got["spec"]["groupPriorityMinimum"], got["spec"]["versionPriority"]) == (1000, 100)
    srv.kubectl("delete", "crd", f"gizmos.{group}", check=True)
    srv.wait_for(lambda: srv.kubectl("get", "apiservice", name).returncode != 0, what="the APIService gone")


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_apiservice_validation_messages(srv, binary):
    bad = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.wrong.example.com"},
           "spec": {"group": "right.example.com", "version": "v1", "groupPriorityMinimum": 0,
                    "versionPriority": 1001, "insecureSkipTLSVerify": True, "caBundle": "aGVsbG8="}}
    p = srv.kubectl("create", "-f", "-", input=json.dumps(bad), binary=binary)
    assert p.returncode != 0
    assert p.stderr.strip() == (
        'The APIService "v1.wrong.example.com" is invalid: \n'
        '* metadata.name: Invalid value: "v1.wrong.example.com": must be `spec.version+"."+spec.group`: '
        '"v1.right.example.com"\n'
        "* spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000\n"
        "* spec.versionPriority: Invalid value: 1001: must be positive and less than 1000\n"
        '* spec.caBundle: Invalid value: "5 bytes": local APIServices may not have a caBundle\n'
        "* spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify")
    both = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.both.example.com"},
            "spec": {"group": "both.example.com", "version": "v1", "groupPriorityMinimum": 100, "versionPriority": 10,
                     "insecureSkipTLSVerify": True, "caBundle": "aGVsbG8=", "service": {"namespace": "default"}}}
    p = srv.kubectl("create", "-f", "-", input=json.dumps(both), binary=binary)
    assert p.stderr.strip() == (
        'The APIService "v1.both.example.com" is invalid: \n'
        "* spec.service.name: Required value\n"
        "* spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present")
    status = {"status": {"conditions": [{"type": "Available", "status": "Maybe"}]}}
    p = srv.kubectl("patch", "apiservice", "v1.apps", "--subresource=status", "--type=merge", "-p", json.dumps(status),
                    binary=binary)
    assert p.stderr.strip() == (
        'The APIService "v1.apps" is invalid: status.conditions[0].status: Unsupported value: "Maybe": '
        'supported values: "True", "False", "Unknown"')


def test_the_proxy_verifies_the_servers_certificate_against_the_ca_bundle(srv, request):
    ns = create_namespace(srv, request, "aggca")
    ext = SampleAPIServer(f"{SERVICE}.{ns}.svc", srv.data_dir / "tls" / "ca.crt").start()
    other = SampleAPIServer(f"{SERVICE}.{ns}.svc", srv.data_dir / "tls" / "ca.crt")  # only for its CA
    try:
        apply(srv, service(ns))
        apply(srv, endpoint_slice(ns, ext.port))
        apply(srv, apiservice(ns, other.ca_bundle))
        # The availability check only asks whether something answers (as upstream's does)...
        wait_available(srv, "True", "Passed")
        # ...but requests are forwarded only to a server the caBundle vouches for.
        code, body = raw(srv, f"/apis/{GV}/namespaces/{ns}/flunders")
        assert code == 503
        assert body.startswith(b"Error trying to reach service: ") and b"certificate verify failed" in body
        assert not ext.seen("/flunders")
        apply(srv, apiservice(ns, ext.ca_bundle))
        code, body = srv.wait_for(lambda: (r := raw(srv, f"/apis/{GV}/namespaces/{ns}/flunders"))[0] == 200 and r,
                                  what="the right caBundle")
        assert json.loads(body)["kind"] == "FlunderList"
    finally:
        srv.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")
        ext.stop()
        other.stop()


def test_websocket_requests_are_relayed_to_the_extension(srv, request):
    ns = create_namespace(srv, request, "aggws")
    ext = SampleAPIServer(f"{SERVICE}.{ns}.svc", srv.data_dir / "tls" / "ca.crt").start()
    try:
        apply(srv, service(ns))
        apply(srv, endpoint_slice(ns, ext.port))
        apply(srv, apiservice(ns, ext.ca_bundle))
        wait_available(srv, "True", "Passed")

        async def talk() -> tuple[str | None, list[object]]:
            url = srv.url.replace("https", "wss") + f"/apis/{GV}/namespaces/{ns}/flunders/x/echo"
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    url, ssl=admin_tls(srv), protocols=("echo.wardle.example.com",)) as ws:
                await ws.send_str("hello")
                await ws.send_bytes(b"\x01\x02")
                got = [(await ws.receive(timeout=10)).data, (await ws.receive(timeout=10)).data]
                return ws.protocol, got
        protocol, got = asyncio.run(talk())
        assert protocol == "echo.wardle.example.com"
        assert got == ["echo: hello", b"echo: \x01\x02"]
        seen = ext.seen("/flunders/x/echo")[-1]
        assert seen["client_cn"] == PROXY_CN and seen["headers"]["x-remote-group"]
    finally:
        srv.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")
        ext.stop()


def test_a_fixture_reset_forgets_extension_apiservices(tmp_path):
    s = start_server(tmp_path, *API_ONLY, "--allow-reset")
    ext = None
    try:
        ns = "default"
        ext = SampleAPIServer(f"{SERVICE}.{ns}.svc", s.data_dir / "tls" / "ca.crt").start()
        apply(s, service(ns))
        apply(s, endpoint_slice(ns, ext.port))
        apply(s, apiservice(ns, ext.ca_bundle))
        wait_available(s, "True", "Passed")
        assert GROUP in s.kubectl("get", "--raw", "/apis", check=True).stdout
        req = urllib.request.Request(s.url + "/kubelite/reset", method="POST", data=b"",
                                     headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, context=admin_tls(s), timeout=30) as r:
            assert r.status == 200
        s.wait_for(lambda: GROUP not in s.kubectl("get", "--raw", "/apis", check=True).stdout,
                   what="the extension group gone after the reset")
        code, _ = raw(s, f"/apis/{GV}/namespaces/{ns}/flunders")
        assert code == 404
        rows = {r.split()[0]: r.split()[1:3] for r in s.kubectl("get", "apiservices", check=True).stdout.splitlines()[1:]}
        assert rows["v1.apps"] == ["Local", "True"] and APISERVICE not in rows
    finally:
        if ext is not None:
            ext.stop()
        s.stop()
