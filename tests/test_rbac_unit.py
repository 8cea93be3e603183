"""RBAC as pure functions: rule matching, request attributes, the authorizer over a
snapshot, escalation coverage, aggregation and validation (no server)."""
from __future__ import annotations

import asyncio

import pytest

from kubelite.api.validation import validate
from kubelite.apiserver.authn import User
from kubelite.apiserver.authz import policy
from kubelite.apiserver.authz.attributes import Attributes, request_attributes
from kubelite.apiserver.authz.chain import Decision, forbidden
from kubelite.apiserver.authz.node import node_identity, referenced
from kubelite.apiserver.authz.policy import rule
from kubelite.apiserver.authz.rbac import RBACAuthorizer, Snapshot, build_snapshot
from kubelite.apiserver.authz.rules import compact, rule_allows, uncovered
from kubelite.controllers.clusterroleaggregation import aggregate_rules

ALICE = User("alice", ["devs", "system:authenticated"])


def res(verb: str, resource: str, *, group: str = "", sub: str = "", name: str = "", ns: str = "") -> Attributes:
    return Attributes(ALICE, verb, True, namespace=ns, api_group=group, resource=resource, subresource=sub, name=name)


def url(verb: str, path: str) -> Attributes:
    return Attributes(ALICE, verb, False, path=path)


# -- rule matching (upstream's RuleAllows table) ---------------------------------------------
@pytest.mark.parametrize("r,a,allowed", [
    (rule("get", "pods"), res("get", "pods"), True),
    (rule("get", "pods"), res("list", "pods"), False),
    (rule("*", "pods"), res("delete", "pods"), True),
    (rule("get", "pods"), res("get", "pods", group="apps"), False),
    (rule("get", "deployments", "*"), res("get", "deployments", group="apps"), True),
    (rule("get", "pods"), res("get", "pods", sub="log"), False),
    (rule("get", "pods/log"), res("get", "pods", sub="log"), True),
    (rule("get", "*/scale", "*"), res("get", "deployments", group="apps", sub="scale"), True),
    (rule("get", "*", "*"), res("get", "pods", sub="log"), True),
    (rule("get", "pods", names="a b"), res("get", "pods", name="b"), True),
    (rule("get", "pods", names="a b"), res("get", "pods", name="c"), False),
    (rule("create", "pods", names="a"), res("create", "pods"), False),  # a create names nothing yet
    (rule("list", "pods", names="a"), res("list", "pods"), False),
    (rule("get", urls="/healthz"), url("get", "/healthz"), True),
    (rule("get", urls="/apis/*"), url("get", "/apis/apps/v1"), True),
    (rule("get", urls="/apis/*"), url("get", "/api"), False),
    (rule("get", urls="*"), url("get", "/anything"), True),
    (rule("get", urls="/healthz"), url("post", "/healthz"), False),
    (rule("get", "pods"), url("get", "/healthz"), False),
])
def test_rule_allows(r, a, allowed):
    assert rule_allows(r, a) is allowed


# -- request attributes (upstream's RequestInfo) -------------------------------------------------
@pytest.mark.parametrize("method,path,query,want", [
    ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "ns", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "ns", "", "pods", "", "")),
    ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "ns", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "ns", "", "pods", "log", "p")),
    ("POST", "/api/v1/namespaces/ns/pods", {}, ("create", "ns", "", "pods", "", "")),
    ("DELETE", "/api/v1/namespaces/ns/pods", {}, ("deletecollection", "ns", "", "pods", "", "")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", {}, ("patch", "ns", "apps", "deployments", "scale", "d")),
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "ns", "", "namespaces", "", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "ns", "", "namespaces", "finalize", "ns")),
    ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
    ("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=n1"}, ("list", "", "", "nodes", "", "n1")),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", {}, ("create", "ns", "", "serviceaccounts", "token", "sa")),
])
def test_request_attributes(method, path, query, want):
    a = request_attributes(ALICE, method, path, query)
    assert a.resource_request
    assert (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name) == want


@pytest.mark.parametrize("method,path,verb", [
    ("GET", "/api", "get"), ("GET", "/api/v1", "get"), ("GET", "/apis/apps/v1", "get"),
    ("GET", "/openapi/v3", "get"), ("POST", "/v1-kubelite/node-certificates", "post"), ("GET", "/", "get"),
])
def test_non_resource_attributes(method, path, verb):
    a = request_attributes(ALICE, method, path, {})
    assert not a.resource_request and a.verb == verb and a.path == path


# -- the authorizer over a snapshot -------------------------------------------------------------
def _role(kind: str, name: str, rules: list, ns: str = "") -> dict:
    md = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": md, "rules": rules}


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list, ns: str = "") -> dict:
    md = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": md, "roleRef": {"apiGroup": policy.GROUP, "kind": role_kind, "name": role},
            "subjects": subjects}


class _Cache:
    def __init__(self, snap: Snapshot):
        self.snap = snap

    async def snapshot(self) -> Snapshot:
        return self.snap


def _authz(cluster_roles, roles, cluster_bindings, bindings) -> RBACAuthorizer:
    return RBACAuthorizer(_Cache(build_snapshot(cluster_roles, roles, cluster_bindings, bindings)))


def test_role_binding_grants_only_in_its_namespace():
    authz = _authz([], [_role("Role", "reader", [rule("list", "pods")], "a")], [],
                   [_binding("RoleBinding", "rb", "Role", "reader", [{"kind": "User", "name": "alice"}], "a")])
    v = asyncio.run(authz.authorize(res("list", "pods", ns="a")))
    assert v.decision is Decision.ALLOW
    assert v.reason == 'RBAC: allowed by RoleBinding "rb/a" of Role "reader" to User "alice"'
    assert asyncio.run(authz.authorize(res("list", "pods", ns="b"))).decision is Decision.NO_OPINION
    assert asyncio.run(authz.authorize(res("list", "secrets", ns="a"))).decision is Decision.NO_OPINION


def test_group_and_service_account_subjects():
    view = _role("ClusterRole", "view", [rule("get list", "pods")])
    authz = _authz([view], [], [_binding("ClusterRoleBinding", "devs-view", "ClusterRole", "view",
                                         [{"kind": "Group", "name": "devs"}])],
                   [_binding("RoleBinding", "sa-view", "ClusterRole", "view",
                             [{"kind": "ServiceAccount", "name": "robot"}], "ns")])
    v = asyncio.run(authz.authorize(res("get", "pods", ns="x")))
    assert v.reason == 'RBAC: allowed by ClusterRoleBinding "devs-view" of ClusterRole "view" to Group "devs"'
    robot = User("system:serviceaccount:ns:robot", ["system:serviceaccounts"])
    a = Attributes(robot, "list", True, namespace="ns", resource="pods")
    v = asyncio.run(authz.authorize(a))
    assert v.reason == 'RBAC: allowed by RoleBinding "sa-view/ns" of ClusterRole "view" to ServiceAccount "robot/ns"'
    other = Attributes(robot, "list", True, namespace="other", resource="pods")
    assert asyncio.run(authz.authorize(other)).decision is Decision.NO_OPINION


def test_non_resource_urls_only_from_cluster_role_bindings():
    disc = _role("ClusterRole", "disc", [rule("get", urls="/apis /apis/*")])
    authz = _authz([disc], [], [], [_binding("RoleBinding", "rb", "ClusterRole", "disc",
                                            [{"kind": "User", "name": "alice"}], "ns")])
    assert asyncio.run(authz.authorize(url("get", "/apis"))).decision is Decision.NO_OPINION
    authz = _authz([disc], [], [_binding("ClusterRoleBinding", "crb", "ClusterRole", "disc",
                                         [{"kind": "User", "name": "alice"}])], [])
    assert asyncio.run(authz.authorize(url("get", "/apis"))).decision is Decision.ALLOW


def test_missing_role_is_reported_as_the_reason():
    authz = _authz([], [], [_binding("ClusterRoleBinding", "crb", "ClusterRole", "gone",
                                     [{"kind": "User", "name": "alice"}])], [])
    v = asyncio.run(authz.authorize(res("get", "pods")))
    assert v.decision is Decision.NO_OPINION
    assert v.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'


def test_forbidden_message_is_upstreams():
    assert forbidden(res("list", "secrets", ns="a")).message == (
        'secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "a"')
    assert forbidden(res("get", "pods", sub="log", name="p", ns="a")).message == (
        'pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "a"')
    assert forbidden(res("list", "deployments", group="apps")).message == (
        'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" '
        "at the cluster scope")
    assert forbidden(url("get", "/apis")).message == 'forbidden: User "alice" cannot get path "/apis"'


# -- escalation coverage ----------------------------------------------------------------------
def test_uncovered_breaks_rules_into_atoms():
    owner = [rule("get list", "pods configmaps"), rule("*", "deployments", "apps")]
    assert uncovered(owner, [rule("get", "pods"), rule("delete", "deployments", "apps")]) == []
    missing = uncovered(owner, [rule("get watch", "pods secrets")])
    assert sorted(compact(m) for m in missing) == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["watch"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["watch"]}']


def test_resource_names_and_subresource_wildcards_cover():
    assert uncovered([rule("get", "pods", names="a b")], [rule("get", "pods", names="a")]) == []
    assert uncovered([rule("get", "pods", names="a")], [rule("get", "pods")]) != []
    assert uncovered([rule("get", "*/scale", "*")], [rule("get", "deployments/scale", "apps")]) == []
    assert uncovered([rule("get", urls="/logs/*")], [rule("get", urls="/logs/a")]) == []


def test_cluster_admin_covers_every_bootstrap_role():
    admin = policy.CLUSTER_ROLES["cluster-admin"][0]
    for role in policy.cluster_roles():
        assert uncovered(admin, role["rules"]) == [], role["metadata"]["name"]


# -- aggregation -------------------------------------------------------------------------------
def test_aggregate_rules_collects_selected_roles_in_name_order():
    agg = {"metadata": {"name": "view"}, "aggregationRule": {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}}
    label = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    b = {"metadata": {"name": "b", "labels": label}, "rules": [rule("get", "pods"), rule("get", "services")]}
    a = {"metadata": {"name": "a", "labels": label}, "rules": [rule("get", "services"), rule("get", "nodes")]}
    other = {"metadata": {"name": "c"}, "rules": [rule("*", "*", "*")]}
    assert aggregate_rules(agg, [b, other, a, agg]) == [rule("get", "services"), rule("get", "nodes"),
                                                      rule("get", "pods")]


# -- node identity and the objects a pod references -----------------------------------------------
def test_node_identity_needs_name_and_group():
    assert node_identity(User("system:node:n1", ["system:nodes"])) == "n1"
    assert node_identity(User("system:node:n1", [])) is None
    assert node_identity(User("alice", ["system:nodes"])) is None


def test_referenced_secrets_and_configmaps():
    pod = {"spec": {
        "volumes": [{"name": "a", "secret": {"secretName": "s1"}}, {"name": "b", "configMap": {"name": "c1"}},
                    {"name": "c", "projected": {"sources": [{"secret": {"name": "s2"}}, {"configMap": {"name": "c2"}}]}}],
        "containers": [{"name": "x", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}},
                                             {"name": "F", "valueFrom": {"configMapKeyRef": {"name": "c3", "key": "k"}}}],
                        "envFrom": [{"secretRef": {"name": "s4"}}, {"configMapRef": {"name": "c4"}}]}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s5"}}]}],
        "imagePullSecrets": [{"name": "s6"}]}}
    assert referenced(pod, "secret") == {"s1", "s2", "s3", "s4", "s5", "s6"}
    assert referenced(pod, "configMap") == {"c1", "c2", "c3", "c4"}


# -- validation and defaulting ------------------------------------------------------------------
RBAC = "rbac.authorization.k8s.io/v1"


def _messages(kind: str, obj: dict, old: dict | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(kind, RBAC, obj, old)]


def test_role_rules_are_validated():
    role = {"metadata": {"name": "r", "namespace": "ns"},
            "rules": [{"verbs": []}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]}
    assert _messages("Role", role) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[0].resources: Required value: resource rules must supply at least one resource",
        'rules[1].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply to non-resource URLs']


def test_names_must_be_path_segments():
    assert _messages("ClusterRole", {"metadata": {"name": "a/b"}, "rules": []}) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"]
    assert _messages("ClusterRole", {"metadata": {"name": "system:node:x"}, "rules": []}) == []


def test_binding_role_ref_and_subjects():
    b = {"metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"},
         "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "r"}]}
    assert _messages("ClusterRoleBinding", b) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']


def test_role_ref_cannot_change():
    old = {"metadata": {"name": "b", "namespace": "ns", "resourceVersion": "1"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"}}
    new = {**old, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "y"}}
    assert _messages("RoleBinding", new, old) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"y"}: '
        "cannot change roleRef"]


def test_bootstrap_policy_is_valid():
    for obj in policy.cluster_roles() + policy.cluster_role_bindings():
        assert validate(obj["kind"], RBAC, obj) == [], obj["metadata"]["name"]
    for obj in policy.namespace_roles() + policy.namespace_role_bindings():
        assert validate(obj["kind"], RBAC, obj) == [], obj["metadata"]["name"]
