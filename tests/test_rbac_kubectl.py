"""RBAC, impersonation, reviews and service-account tokens, driven by the real kubectl 1.33
against a whole cluster (fake runtime: no processes, nothing dialled)."""
from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import Server, create_namespace, start_server

from kubelite.pki import PKI


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rbac")
    s = start_server(tmp, "--runtime", "fake")
    yield s
    s.stop()


@pytest.fixture
def ns(request, srv):
    return create_namespace(srv, request, "r")


def ok(srv: Server, *args: str, input: str | None = None) -> str:
    return srv.kubectl(*args, input=input, check=True).stdout


def claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def kubeconfig_for(srv: Server, path: Path, user: dict) -> dict:
    """A kubeconfig for this cluster with another user's credentials; env for kubectl."""
    cfg = srv.client_config()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": cfg.server, "certificate-authority": cfg.ca_file}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return {"KUBECONFIG": str(path)}


def raw(srv: Server, method: str, path: str, *, token: str = "", body: dict | None = None,
        headers: dict | None = None) -> tuple[int, dict]:
    cfg = srv.client_config()
    ctx = ssl.create_default_context(cafile=cfg.ca_file)
    hdrs = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    else:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    req = urllib.request.Request(srv.url + path, method=method, headers=hdrs,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


# -- bootstrap policy -------------------------------------------------------------------------
def test_bootstrap_cluster_roles_are_present_and_aggregated(srv):
    names = ok(srv, "get", "clusterroles", "-o", "name").split()
    for role in ("cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
                 "system:public-info-viewer", "system:node", "system:node-proxier", "system:kube-scheduler",
                 "system:kube-controller-manager", "system:controller:deployment-controller"):
        assert f"clusterrole.rbac.authorization.k8s.io/{role}" in names
    bindings = ok(srv, "get", "clusterrolebindings", "cluster-admin", "-o", "wide")
    assert bindings.split("\n")[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert "ClusterRole/cluster-admin" in bindings and "system:masters" in bindings

    def aggregated() -> bool:
        view = json.loads(ok(srv, "get", "clusterrole", "view", "-o", "json"))
        admin = json.loads(ok(srv, "get", "clusterrole", "admin", "-o", "json"))
        return any("pods" in r.get("resources", []) for r in view.get("rules") or []) and \
            any("rolebindings" in r.get("resources", []) for r in admin.get("rules") or [])
    srv.wait_for(aggregated, what="view and admin aggregated from system:aggregate-to-*")


def test_a_labelled_cluster_role_is_aggregated_into_view(srv):
    ok(srv, "apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]}))
    try:
        srv.wait_for(lambda: "widgets" in ok(srv, "get", "clusterrole", "view", "-o", "yaml"),
                     what="widgets rule in view")
        srv.wait_for(lambda: "widgets" in ok(srv, "get", "clusterrole", "edit", "-o", "yaml"),
                     what="widgets rule in edit (edit aggregates view)")
    finally:
        ok(srv, "delete", "clusterrole", "widgets-view")
    srv.wait_for(lambda: "widgets" not in ok(srv, "get", "clusterrole", "view", "-o", "yaml"),
                 what="widgets rule gone from view")


# -- whoami, can-i, impersonation -------------------------------------------------------------
def test_auth_whoami_names_the_admin(srv):
    out = ok(srv, "auth", "whoami")
    assert "kubelite-admin" in out and "[system:masters system:authenticated]" in out


def test_auth_can_i_with_as(srv, ns):
    p = srv.kubectl("auth", "can-i", "list", "pods", "-n", ns, "--as=alice")
    assert (p.returncode, p.stdout.strip()) == (1, "no")
    ok(srv, "create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "-n", ns)
    p = srv.kubectl("auth", "can-i", "list", "pods", "-n", ns, "--as=alice")
    assert (p.returncode, p.stdout.strip()) == (0, "yes")
    assert srv.kubectl("auth", "can-i", "create", "pods", "-n", ns, "--as=alice").stdout.strip() == "no"
    assert srv.kubectl("auth", "can-i", "list", "pods", "-n", "default", "--as=alice").stdout.strip() == "no"
    assert srv.kubectl("auth", "can-i", "list", "secrets", "-n", ns, "--as=alice").stdout.strip() == "no"
    listing = ok(srv, "auth", "can-i", "--list", "-n", ns, "--as=alice")
    assert "pods " in listing and "selfsubjectaccessreviews.authorization.k8s.io" in listing
    p = srv.kubectl("get", "pods", "-n", ns, "--as=alice")
    assert p.returncode == 0, p.stderr
    p = srv.kubectl("get", "secrets", "-n", ns, "--as=alice")
    assert p.returncode == 1 and p.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "alice" cannot list resource "secrets" '
        f'in API group "" in the namespace "{ns}"')
    groups = ok(srv, "auth", "whoami", "--as=alice", "--as-group=devs")
    assert "alice" in groups and "[devs system:authenticated]" in groups


def test_impersonation_needs_the_impersonate_verb(srv, ns):
    ok(srv, "create", "serviceaccount", "imp", "-n", ns)
    token = ok(srv, "create", "token", "imp", "-n", ns).strip()
    code, body = raw(srv, "GET", f"/api/v1/namespaces/{ns}/pods", token=token, headers={"Impersonate-User": "bob"})
    assert code == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (f'users "bob" is forbidden: User "system:serviceaccount:{ns}:imp" cannot impersonate '
                               'resource "users" in API group "" at the cluster scope')
    ok(srv, "create", "clusterrole", f"{ns}-imp", "--verb=impersonate", "--resource=users", "--resource-name=bob")
    ok(srv, "create", "clusterrolebinding", f"{ns}-imp", f"--clusterrole={ns}-imp", f"--serviceaccount={ns}:imp")
    try:
        code, body = raw(srv, "GET", f"/api/v1/namespaces/{ns}/pods", token=token, headers={"Impersonate-User": "bob"})
        assert code == 403 and body["message"].startswith('pods is forbidden: User "bob" cannot list'), body
        code, body = raw(srv, "GET", f"/api/v1/namespaces/{ns}/pods", token=token, headers={"Impersonate-User": "eve"})
        assert code == 403 and 'users "eve" is forbidden' in body["message"], body
    finally:
        ok(srv, "delete", "clusterrolebinding", f"{ns}-imp")
        ok(srv, "delete", "clusterrole", f"{ns}-imp")


# Client-side validation of a create-only kind makes kubectl list CustomResourceDefinitions,
# which kubelite does not serve yet; the reviews are created with --validate=false.
def test_subject_access_review(srv, ns):
    out = json.loads(ok(srv, "create", "--validate=false", "-o", "json", "-f", "-", input=json.dumps({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "carol", "groups": ["system:authenticated"],
                 "resourceAttributes": {"verb": "create", "resource": "selfsubjectaccessreviews",
                                        "group": "authorization.k8s.io"}}})))
    assert out["status"]["allowed"] is True
    assert out["status"]["reason"] == ('RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole '
                                       '"system:basic-user" to Group "system:authenticated"')
    p = srv.kubectl("create", "--validate=false", "-f", "-", input=json.dumps({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}))
    assert p.returncode == 1 and "spec.user: Invalid value: \"\": at least one of user or group must be specified" \
        in p.stderr


# -- service-account tokens -------------------------------------------------------------------
def test_service_account_with_a_role_that_lists_pods_but_not_secrets(srv, ns, tmp_path):
    ok(srv, "create", "serviceaccount", "lister", "-n", ns)
    ok(srv, "create", "role", "pod-lister", "--verb=list", "--resource=pods", "-n", ns)
    ok(srv, "create", "rolebinding", "lister", "--role=pod-lister", f"--serviceaccount={ns}:lister", "-n", ns)
    token = ok(srv, "create", "token", "lister", "-n", ns, "--duration=10m").strip()
    env = kubeconfig_for(srv, tmp_path / "lister.kubeconfig", {"token": token})
    p = srv.kubectl("get", "pods", "-n", ns, env=env)
    assert p.returncode == 0 and "No resources found" in p.stderr, p.stderr
    p = srv.kubectl("get", "secrets", "-n", ns, env=env)
    assert p.returncode == 1 and p.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:{ns}:lister" cannot list '
        f'resource "secrets" in API group "" in the namespace "{ns}"')
    p = srv.kubectl("get", "pods", "-n", "default", env=env)
    assert p.returncode == 1 and "Forbidden" in p.stderr
    who = srv.kubectl("auth", "whoami", env=env)
    assert f"system:serviceaccount:{ns}:lister" in who.stdout
    assert f"[system:serviceaccounts system:serviceaccounts:{ns} system:authenticated]" in who.stdout


def test_kubectl_create_token_is_a_jwt_the_server_accepts(srv, ns, tmp_path):
    ok(srv, "create", "serviceaccount", "robot", "-n", ns)
    sa = json.loads(ok(srv, "get", "serviceaccount", "robot", "-n", ns, "-o", "json"))
    before = int(time.time())
    token = ok(srv, "create", "token", "robot", "-n", ns, "--duration=10m").strip()
    c = claims(token)
    assert c["sub"] == f"system:serviceaccount:{ns}:robot"
    assert c["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert c["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert c["exp"] - c["iat"] == 600 and c["nbf"] == c["iat"] and before - 5 <= c["iat"] <= int(time.time()) + 5
    assert c["kubernetes.io"] == {"namespace": ns, "serviceaccount": {"name": "robot",
                                                                      "uid": sa["metadata"]["uid"]}}
    p = srv.kubectl("create", "token", "robot", "-n", ns, "--duration=5m")
    assert p.returncode == 1 and "may not specify a duration less than 10 minutes" in p.stderr
    review = json.loads(ok(srv, "create", "--validate=false", "-o", "json", "-f", "-", input=json.dumps({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})))
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{ns}:robot"
    assert review["status"]["user"]["uid"] == sa["metadata"]["uid"]
    env = kubeconfig_for(srv, tmp_path / "robot.kubeconfig", {"token": token})
    assert srv.kubectl("auth", "whoami", env=env).returncode == 0
    ok(srv, "delete", "serviceaccount", "robot", "-n", ns)
    p = srv.kubectl("auth", "whoami", env=env)
    assert p.returncode == 1 and "Unauthorized" in p.stderr, p.stderr


def test_token_bound_to_a_pod_dies_with_the_pod(srv, ns, tmp_path):
    ok(srv, "create", "serviceaccount", "bound", "-n", ns)
    ok(srv, "run", "holder", "-n", ns, "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
       "--overrides", json.dumps({"spec": {"serviceAccountName": "bound"}}))
    pod = json.loads(ok(srv, "get", "pod", "holder", "-n", ns, "-o", "json"))
    token = ok(srv, "create", "token", "bound", "-n", ns, "--bound-object-kind=Pod",
               "--bound-object-name=holder").strip()
    assert claims(token)["kubernetes.io"]["pod"] == {"name": "holder", "uid": pod["metadata"]["uid"]}
    env = kubeconfig_for(srv, tmp_path / "bound.kubeconfig", {"token": token})
    who = srv.kubectl("auth", "whoami", env=env)
    assert who.returncode == 0 and "authentication.kubernetes.io/pod-name" in who.stdout and "[holder]" in who.stdout
    p = srv.kubectl("create", "token", "default", "-n", ns, "--bound-object-kind=Pod", "--bound-object-name=holder")
    assert p.returncode == 1 and 'cannot bind token for serviceaccount "default" to pod running with different ' \
        "serviceaccount name." in p.stderr
    ok(srv, "delete", "pod", "holder", "-n", ns, "--grace-period=0", "--force")
    srv.wait_for(lambda: srv.kubectl("auth", "whoami", env=env).returncode == 1, what="token refused")


def test_service_account_issuer_discovery(srv):
    conf = json.loads(ok(srv, "get", "--raw", "/.well-known/openid-configuration"))
    assert conf["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert conf["jwks_uri"] == f"{srv.url}/openid/v1/jwks"
    keys = json.loads(ok(srv, "get", "--raw", "/openid/v1/jwks"))["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "EC" and keys[0]["use"] == "sig"


# -- escalation prevention ---------------------------------------------------------------------
def _role(name: str, ns: str, resources: list[str], verbs: list[str]) -> str:
    return yaml.safe_dump({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                           "metadata": {"name": name, "namespace": ns},
                           "rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}]})


def test_cannot_grant_permissions_one_does_not_hold(srv, ns):
    # dave may manage roles and bindings in the namespace, and read pods — nothing else.
    # ("*" would include escalate and bind, as upstream)
    ok(srv, "create", "role", "rbac-editor", "-n", ns, "--verb=get,list,watch,create,update,patch,delete",
       "--resource=roles.rbac.authorization.k8s.io",
       "--resource=rolebindings.rbac.authorization.k8s.io")
    ok(srv, "create", "role", "pod-reader", "-n", ns, "--verb=get,list", "--resource=pods")
    ok(srv, "create", "rolebinding", "dave-rbac", "-n", ns, "--role=rbac-editor", "--user=dave")
    ok(srv, "create", "rolebinding", "dave-pods", "-n", ns, "--role=pod-reader", "--user=dave")
    assert srv.kubectl("apply", "-f", "-", "--as=dave", input=_role("pods-too", ns, ["pods"], ["get"])).returncode == 0
    p = srv.kubectl("apply", "-f", "-", "--as=dave", input=_role("secrets", ns, ["secrets"], ["get"]))
    assert p.returncode == 1
    assert ('roles.rbac.authorization.k8s.io "secrets" is forbidden: user "dave" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}') in p.stderr, p.stderr
    p = srv.kubectl("create", "rolebinding", "dave-admin", "-n", ns, "--clusterrole=admin", "--user=dave", "--as=dave")
    assert p.returncode == 1 and "is attempting to grant RBAC permissions not currently held" in p.stderr
    # escalate on roles and bind on the admin ClusterRole lift each restriction
    ok(srv, "create", "role", "escalator", "-n", ns, "--verb=escalate,bind",
       "--resource=roles.rbac.authorization.k8s.io", "--resource=clusterroles.rbac.authorization.k8s.io")
    ok(srv, "create", "rolebinding", "dave-escalate", "-n", ns, "--role=escalator", "--user=dave")
    assert srv.kubectl("apply", "-f", "-", "--as=dave", input=_role("secrets", ns, ["secrets"], ["get"])).returncode == 0
    p = srv.kubectl("create", "rolebinding", "dave-admin", "-n", ns, "--clusterrole=admin", "--user=dave", "--as=dave")
    assert p.returncode == 0, p.stderr


def test_auth_reconcile(srv, ns):
    manifest = yaml.safe_dump_all([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "rec", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "rec", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rec"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "erin"}]}])
    out = ok(srv, "auth", "reconcile", "-f", "-", input=manifest)
    assert out.split() == ["role.rbac.authorization.k8s.io/rec", "reconciled",
                           "rolebinding.rbac.authorization.k8s.io/rec", "reconciled"]
    assert srv.kubectl("auth", "can-i", "get", "configmaps", "-n", ns, "--as=erin").stdout.strip() == "yes"
    assert srv.kubectl("auth", "can-i", "list", "configmaps", "-n", ns, "--as=erin").stdout.strip() == "no"
    ok(srv, "auth", "reconcile", "-f", "-", input=manifest.replace("- get", "- get\n  - list"))
    assert srv.kubectl("auth", "can-i", "list", "configmaps", "-n", ns, "--as=erin").stdout.strip() == "yes"
    role = json.loads(ok(srv, "get", "role", "rec", "-n", ns, "-o", "json"))
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                             {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]


# -- node identities ----------------------------------------------------------------------------
def test_node_agent_cannot_touch_another_nodes_pods(srv, ns, tmp_path):
    node = json.loads(ok(srv, "get", "nodes", "-o", "json"))["items"][0]["metadata"]["name"]
    ok(srv, "run", "elsewhere", "-n", ns, "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
       "--overrides", json.dumps({"spec": {"nodeName": node}}))
    cert, key = tmp_path / "other.crt", tmp_path / "other.key"
    PKI(str(srv.data_dir)).issue_client("system:node:other-node", ["system:nodes"], str(cert), str(key))
    env = kubeconfig_for(srv, tmp_path / "other.kubeconfig", {"client-certificate": str(cert),
                                                              "client-key": str(key)})
    who = srv.kubectl("auth", "whoami", env=env)
    assert "system:node:other-node" in who.stdout and "system:nodes" in who.stdout
    p = srv.kubectl("get", "pod", "elsewhere", "-n", ns, env=env)
    assert p.returncode == 1 and p.stderr.strip() == (
        f'Error from server (Forbidden): pods "elsewhere" is forbidden: User "system:node:other-node" cannot get '
        f'resource "pods" in API group "" in the namespace "{ns}": no relationship found between node '
        "'other-node' and this object")
    p = srv.kubectl("delete", "pod", "elsewhere", "-n", ns, env=env)
    assert p.returncode == 1 and "Forbidden" in p.stderr
    p = srv.kubectl("label", "node", node, "hijacked=yes", env=env)
    assert p.returncode == 1 and "Forbidden" in p.stderr
    # The node that runs the pod may read it, through the same rules (impersonated here).
    p = srv.kubectl("get", "pod", "elsewhere", "-n", ns, f"--as=system:node:{node}", "--as-group=system:nodes")
    assert p.returncode == 0, p.stderr
    p = srv.kubectl("get", "pods", "-n", ns, "--as=system:node:other-node", "--as-group=system:nodes")
    assert p.returncode == 1 and "can only list/watch pods with spec.nodeName field selector" in p.stderr


def test_components_run_with_their_own_identities(srv):
    tls = srv.data_dir / "tls"
    for name in ("controller-manager", "scheduler", "kube-proxy"):
        assert (tls / f"{name}.crt").exists(), name
    accounts = ok(srv, "get", "serviceaccounts", "-n", "kube-system", "-o", "name").split()
    for sa in ("deployment-controller", "replicaset-controller", "generic-garbage-collector", "namespace-controller"):
        assert f"serviceaccount/{sa}" in accounts
    assert srv.kubectl("auth", "can-i", "create", "pods", "-n", "default",
                       "--as=system:kube-scheduler").stdout.strip() == "no"
    assert srv.kubectl("auth", "can-i", "create", "pods", "--subresource=binding", "-n", "default",
                       "--as=system:kube-scheduler").stdout.strip() == "yes"
    assert srv.kubectl("auth", "can-i", "list", "secrets", "-A",
                       "--as=system:serviceaccount:kube-system:deployment-controller").stdout.strip() == "no"


# -- bad input never answers 5xx ----------------------------------------------------------------
RBAC_V1 = "/apis/rbac.authorization.k8s.io/v1"


@pytest.mark.parametrize("path,body", [
    (f"{RBAC_V1}/clusterroles", {"metadata": {"name": "bad"}, "rules": 5}),
    (f"{RBAC_V1}/clusterroles", {"metadata": {"name": "bad"}, "rules": [{"verbs": "get"}]}),
    (f"{RBAC_V1}/clusterroles", {"metadata": {"name": "bad"}, "aggregationRule": {"clusterRoleSelectors": "x"}}),
    (f"{RBAC_V1}/clusterrolebindings", {"metadata": {"name": "bad"}, "roleRef": "view", "subjects": {}}),
    (f"{RBAC_V1}/clusterrolebindings", {"metadata": {"name": "bad"},
                                        "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [7]}),
    ("/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": {"user": 5, "groups": "g",
                                                                     "resourceAttributes": []}}),
    ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": "x"}),
    ("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {"namespace": 3}}),
    ("/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "not.a.jwt", "audiences": "a"}}),
    ("/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": ["x"]}}),
    ("/api/v1/namespaces/default/serviceaccounts/default/token",
     {"spec": {"expirationSeconds": "600", "audiences": "x"}}),
    ("/api/v1/namespaces/default/serviceaccounts/default/token",
     {"spec": {"boundObjectRef": {"kind": {"a": 1}, "name": "p"}}}),
    ("/api/v1/namespaces/default/serviceaccounts/default/token",
     {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "no-such-pod"}}}),
    ("/v1-kubelite/node-certificates", {"nodeName": "n", "nodeCSR": "garbage", "proxyCSR": "garbage"}),
])
def test_bad_bodies_never_get_5xx(srv, path, body):
    """Wrong types are refused with a Status (or, where a value is merely ignored, answered)."""
    code, out = raw(srv, "POST", path, body=body)
    assert code < 500, (code, out)
    assert out.get("kind") == "Status" if code >= 400 else out.get("kind", "").endswith("Review"), out


def test_kubectl_apply_updates_a_role(srv, ns):
    ok(srv, "apply", "-f", "-", input=_role("applied", ns, ["pods"], ["get"]))
    out = ok(srv, "apply", "-f", "-", input=_role("applied", ns, ["pods", "services"], ["get", "list"]))
    assert out.strip() == "role.rbac.authorization.k8s.io/applied configured"
    role = json.loads(ok(srv, "get", "role", "applied", "-n", ns, "-o", "json"))
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list"]}]
    out = ok(srv, "apply", "--server-side", "--force-conflicts", "-f", "-",
             input=_role("applied", ns, ["configmaps"], ["get"]))
    assert "serverside-applied" in out
    assert json.loads(ok(srv, "get", "role", "applied", "-n", ns, "-o", "json"))["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
