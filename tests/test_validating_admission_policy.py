"""ValidatingAdmissionPolicy (upstream test/e2e/apimachinery/validatingadmissionpolicy.go,
rebuilt): CEL validations applied through bindings, with kubectl 1.33 and the Python
kubernetes client."""
from __future__ import annotations

import json

import pytest
from conftest import API_ONLY, namespace_name, start_server
from kubernetes import client, config
from kubernetes.client.rest import ApiException

GV = "admissionregistration.k8s.io/v1"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("vap"), *API_ONLY)
    yield s
    s.stop()


@pytest.fixture
def ns(request, srv):
    name = namespace_name(request, "vap")
    srv.kubectl("create", "namespace", name, check=True)
    srv.kubectl("label", "namespace", name, f"vap-test={name}", check=True)
    return name


@pytest.fixture
def made(srv):
    """Objects a test creates with kubectl; deleted afterwards."""
    objs: list[dict] = []

    def create(obj: dict) -> dict:
        out = srv.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(obj))
        assert out.returncode == 0, out.stderr
        objs.append(obj)
        return json.loads(out.stdout)

    yield create
    for o in reversed(objs):
        srv.kubectl("delete", o["kind"].lower(), o["metadata"]["name"], "--ignore-not-found")


def policy(name: str, validations: list[dict], **spec) -> dict:
    rules = [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
              "resources": ["deployments"]}]
    return {"apiVersion": GV, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules},
                     "validations": validations, **spec}}


def binding(name: str, policy_name: str, ns: str, actions: list[str], **spec) -> dict:
    return {"apiVersion": GV, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": actions,
                     "matchResources": {"namespaceSelector": {"matchLabels": {"vap-test": ns}}}, **spec}}


def deployment(name: str, replicas: int) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}}})


def test_denials_as_kubectl_prints_them(srv, made, ns):
    made(policy(f"{ns}.example.com", [{"expression": "object.spec.replicas <= 5"},
                                      {"expression": "object.spec.replicas > 0", "message": "no zero replicas",
                                       "reason": "Forbidden"}]))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Deny"]))
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("too-many", 10))
    assert out.returncode == 1
    # As kubectl prints upstream's 422 (the cause has no field, hence ": : ").
    assert out.stderr.strip() == (
        'The deployments "too-many" is invalid: : '
        f"ValidatingAdmissionPolicy '{ns}.example.com' with binding '{ns}-binding.example.com' denied request: "
        "failed expression: object.spec.replicas <= 5")
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("zero", 0))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": deployments.apps "zero" is forbidden: '
        f"ValidatingAdmissionPolicy '{ns}.example.com' with binding '{ns}-binding.example.com' denied request: "
        "no zero replicas")
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("fine", 2))
    assert out.returncode == 0, out.stderr
    # An update is checked too.
    out = srv.kubectl("scale", "-n", ns, "deployment", "fine", "--replicas=7")
    assert out.returncode == 1 and "failed expression: object.spec.replicas <= 5" in out.stderr


def test_warn_action_lets_the_write_through_with_a_warning(srv, made, ns):
    made(policy(f"{ns}.example.com", [{"expression": "object.spec.replicas <= 5",
                                       "messageExpression": "'replicas must be at most 5, not ' + "
                                                            "string(object.spec.replicas)"}]))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Warn", "Audit"]))
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("warned", 8))
    assert out.returncode == 0, out.stderr
    assert (f"Warning: Validation failed for ValidatingAdmissionPolicy '{ns}.example.com' with binding "
            f"'{ns}-binding.example.com': replicas must be at most 5, not 8") in out.stderr


def test_should_type_check_validation_expressions_and_params(srv, made, ns):
    # The limit comes from a ConfigMap named by the binding (paramKind / paramRef).
    made(policy(f"{ns}.example.com", [{"expression": "object.spec.replicas <= int(params.data.maxReplicas)",
                                       "messageExpression": "'at most ' + params.data.maxReplicas"}],
                paramKind={"apiVersion": "v1", "kind": "ConfigMap"}))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Deny"],
                 paramRef={"name": "limits", "parameterNotFoundAction": "Deny"}))
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("no-params-yet", 1))
    assert out.returncode == 1
    assert "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction" \
        in out.stderr
    srv.kubectl("create", "configmap", "-n", ns, "limits", "--from-literal=maxReplicas=3", check=True)
    assert srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("three", 3)).returncode == 0
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("four", 4))
    assert out.returncode == 1 and "denied request: at most 3" in out.stderr


def test_policy_and_binding_validation_messages(srv):
    bad = {"apiVersion": GV, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "bad-policy"},
           "spec": {"validations": [{"expression": "object.spec.replicas <"}, {"expression": "true", "reason": "Nope"}]}}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(bad))
    assert out.returncode == 1
    assert "spec.matchConstraints: Required value" in out.stderr
    assert 'spec.validations[0].expression: Invalid value: "object.spec.replicas <": compilation failed' in out.stderr
    assert 'spec.validations[1].reason: Unsupported value: "Nope": supported values: "Forbidden", "Invalid", ' \
           '"RequestEntityTooLarge"' in out.stderr
    rules = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
              "resourceNames": ["a/b", "x", "x"]}]
    bad = {"apiVersion": GV, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "bad-policy"},
           "spec": {"paramKind": {"apiVersion": "a/b/c", "kind": "Config_Map"},
                    "matchConstraints": {"resourceRules": rules}}}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(bad))
    assert out.returncode == 1
    for text in ('spec.paramKind.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c',
                 'spec.paramKind.kind: Invalid value: "Config_Map": may have mixed case, but should otherwise match: ',
                 "spec.matchConstraints.resourceRules[0].resourceNames[0]: Invalid value: \"a/b\": may not contain '/'",
                 'spec.matchConstraints.resourceRules[0].resourceNames[2]: Duplicate value: "x"',
                 "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
                 "spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one "
                 "item"):
        assert text in out.stderr, (text, out.stderr)
    bad_binding = {"apiVersion": GV, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "bad-binding"},
                   "spec": {"validationActions": ["Deny", "Warn"]}}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(bad_binding))
    assert out.returncode == 1
    assert "spec.policyName: Required value" in out.stderr
    assert "must not contain both Deny and Warn" in out.stderr
    bad_binding["spec"] = {"policyName": "p", "validationActions": ["Deny"],
                           "paramRef": {"name": "a%b", "parameterNotFoundAction": "Maybe"}}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(bad_binding))
    assert out.returncode == 1
    assert "spec.paramRef.name: Invalid value: \"a%b\": may not contain '%'" in out.stderr
    assert 'spec.paramRef.parameterNotFoundAction: Unsupported value: "Maybe": supported values: "Deny", "Allow"' \
        in out.stderr


def test_policies_are_printed(srv, made, ns):
    made(policy(f"{ns}.example.com", [{"expression": "true"}, {"expression": "1 == 1"}],
                paramKind={"apiVersion": "v1", "kind": "ConfigMap"}))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Deny"],
                 paramRef={"name": "limits", "namespace": ns, "parameterNotFoundAction": "Allow"}))
    header, row = srv.kubectl("get", "validatingadmissionpolicy", f"{ns}.example.com", check=True).stdout.splitlines()
    assert header.split() == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    assert row.split()[:3] == [f"{ns}.example.com", "2", "v1/ConfigMap"]
    header, row = srv.kubectl("get", "validatingadmissionpolicybinding", f"{ns}-binding.example.com",
                              check=True).stdout.splitlines()
    assert header.split() == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert row.split()[:3] == [f"{ns}-binding.example.com", f"{ns}.example.com", f"{ns}/limits"]


# --- with the Python kubernetes client, as the upstream e2e specs do -------------------------

@pytest.fixture(scope="module")
def api(srv):
    return config.new_client_from_config(config_file=srv.kubeconfig)


@pytest.fixture
def adm(api):
    """The admissionregistration client; deletes the policies and bindings a test made."""
    a = client.AdmissionregistrationV1Api(api)
    yield a
    for b in a.list_validating_admission_policy_binding().items:
        if b.metadata.name.startswith("py-"):
            a.delete_validating_admission_policy_binding(b.metadata.name)
    for p in a.list_validating_admission_policy().items:
        if p.metadata.name.startswith("py-"):
            a.delete_validating_admission_policy(p.metadata.name)


def py_deployment(name: str, replicas: int) -> dict:
    return json.loads(deployment(name, replicas))


def py_replicaset(name: str, replicas: int) -> dict:
    d = py_deployment(name, replicas)
    d["kind"] = "ReplicaSet"
    return d


def create_replicaset(apps, ns: str, name: str, replicas: int) -> None:
    """Create a ReplicaSet; the reply is not decoded, as this client's model rejects a
    ReplicaSet status without replicas, which kubelite returns before a controller ran."""
    reply = apps.create_namespaced_replica_set(ns, py_replicaset(name, replicas), _preload_content=False)
    assert reply.status == 201


def unique_namespace_policy(name: str, ns: str, validations: list[dict], **spec) -> dict:
    """Upstream's builder: the policy itself selects the test's labelled namespace."""
    p = policy(name, validations, **spec)
    p["spec"]["matchConstraints"]["namespaceSelector"] = {"matchLabels": {"vap-test": ns}}
    return p


def plain_binding(name: str, policy_name: str, ns: str) -> dict:
    return binding(name, policy_name, ns, ["Deny"])


def test_should_validate_against_a_deployment(api, adm, ns):
    apps = client.AppsV1Api(api)
    # The messageExpression adds an int to a string: it fails, so the expression is shown.
    adm.create_validating_admission_policy(unique_namespace_policy(
        "py-deployment.policy.example.com", ns,
        [{"expression": "object.spec.replicas > 1",
          "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas"}]))
    adm.create_validating_admission_policy_binding(
        plain_binding("py-deployment.binding.example.com", "py-deployment.policy.example.com", ns))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment(ns, py_deployment("marker-deployment", 1))
    assert e.value.status == 422
    body = json.loads(e.value.body)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'deployments.apps "marker-deployment" is forbidden: ValidatingAdmissionPolicy '
        "'py-deployment.policy.example.com' with binding 'py-deployment.binding.example.com' denied request: "
        "failed expression: object.spec.replicas > 1")
    assert body["details"]["causes"] == [{"message": body["message"].split(" is forbidden: ", 1)[1]}]
    apps.create_namespaced_deployment(ns, py_deployment("replicated", 2))
    # The policy matches Deployments only.
    create_replicaset(apps, ns, "non-replicated", 1)


def test_should_allow_expressions_to_refer_variables(api, adm, ns):
    apps = client.AppsV1Api(api)
    adm.create_validating_admission_policy(unique_namespace_policy(
        "py-variables.policy.example.com", ns,
        [{"expression": "variables.replicas > 1"}, {"expression": "variables.oddReplicas"}],
        variables=[{"name": "replicas", "expression": "object.spec.replicas"},
                   {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}]))
    adm.create_validating_admission_policy_binding(
        plain_binding("py-variables.binding.example.com", "py-variables.policy.example.com", ns))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment(ns, py_deployment("marker-deployment", 1))
    assert e.value.status == 422 and "failed expression: variables.replicas > 1" in e.value.body
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment(ns, py_deployment("even", 4))
    assert "failed expression: variables.oddReplicas" in e.value.body
    apps.create_namespaced_deployment(ns, py_deployment("replicated", 3))
    create_replicaset(apps, ns, "non-replicated", 1)


def test_should_support_validatingadmissionpolicy_api_operations(srv, adm):
    name = "py-api-ops.policy.example.com"
    made = adm.create_validating_admission_policy(
        {**policy(name, [{"expression": "object.spec.replicas < 100"}]),
         "metadata": {"name": name, "labels": {"vap-e2e": "ops"}}})
    assert made.metadata.generation == 1
    assert made.spec.failure_policy == "Fail"
    assert made.spec.match_constraints.match_policy == "Equivalent"
    assert made.spec.match_constraints.resource_rules[0].scope == "*"
    srv.wait_for(lambda: adm.read_validating_admission_policy_status(name).status.observed_generation == 1,
                 what="observedGeneration 1")
    listed = adm.list_validating_admission_policy(label_selector="vap-e2e=ops").items
    assert [p.metadata.name for p in listed] == [name]
    # A spec change moves the generation; a label change does not.
    patched = adm.patch_validating_admission_policy(name, {"metadata": {"labels": {"patched": "true"}}})
    assert patched.metadata.generation == 1 and patched.metadata.labels["patched"] == "true"
    patched = adm.patch_validating_admission_policy(
        name, {"spec": {"validations": [{"expression": "object.spec.replicas < 50"}]}})
    assert patched.metadata.generation == 2
    srv.wait_for(lambda: adm.read_validating_admission_policy(name).status.observed_generation == 2,
                 what="observedGeneration 2")
    # The main resource ignores status; the status subresource ignores spec.
    current = adm.read_validating_admission_policy(name)
    current.status.observed_generation = 7
    current.spec.validations[0].expression = "object.spec.replicas < 10"
    replaced = adm.replace_validating_admission_policy_status(name, current)
    assert replaced.status.observed_generation == 7
    assert replaced.spec.validations[0].expression == "object.spec.replicas < 50"
    adm.delete_collection_validating_admission_policy(label_selector="vap-e2e=ops")
    assert adm.list_validating_admission_policy(label_selector="vap-e2e=ops").items == []


def test_should_support_validatingadmissionpolicybinding_api_operations(adm):
    name = "py-api-ops.binding.example.com"
    made = adm.create_validating_admission_policy_binding(
        {"apiVersion": GV, "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name, "labels": {"vap-e2e": "ops"}},
         "spec": {"policyName": "py-missing.policy.example.com", "validationActions": ["Deny"],
                  "matchResources": {}}})
    assert made.metadata.generation == 1
    assert made.spec.match_resources.match_policy == "Equivalent"
    assert made.spec.match_resources.namespace_selector is not None
    got = adm.read_validating_admission_policy_binding(name)
    assert got.spec.policy_name == "py-missing.policy.example.com"
    patched = adm.patch_validating_admission_policy_binding(name, {"spec": {"validationActions": ["Warn"]}})
    assert patched.spec.validation_actions == ["Warn"] and patched.metadata.generation == 2
    with pytest.raises(ApiException) as e:
        adm.patch_validating_admission_policy_binding(name, {"spec": {"validationActions": ["Deny", "Warn"]}})
    assert e.value.status == 422
    assert "spec.validationActions: Invalid value" in json.loads(e.value.body)["message"]
    assert [b.metadata.name for b in adm.list_validating_admission_policy_binding(
        label_selector="vap-e2e=ops").items] == [name]
    adm.delete_collection_validating_admission_policy_binding(label_selector="vap-e2e=ops")
    with pytest.raises(ApiException) as e:
        adm.read_validating_admission_policy_binding(name)
    assert e.value.status == 404


# --- matching, parameters, failure policy, actions (kubectl) ---------------------------------

def configmap_policy(name: str, validations: list[dict], **spec) -> dict:
    rules = [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
              "resources": ["configmaps"]}]
    return {"apiVersion": GV, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules},
                     "validations": validations, **spec}}


def create_cm(srv, ns: str, name: str, labels: dict | None = None, data: dict | None = None):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
          "data": data or {}}
    return srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(cm))


def test_match_resources_select_the_request(srv, made, ns):
    excluded = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
                 "resourceNames": ["exempt"]}]
    made(configmap_policy(
        f"{ns}.example.com",
        [{"expression": "object.metadata.name.startsWith('good') && "
                        "namespaceObject.metadata.name == request.namespace && request.operation == 'CREATE'",
          "message": "names must start with good"}],
        matchConditions=[{"name": "not-opted-out", "expression": "!has(object.data) || !('opt-out' in object.data)"}]))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Deny"],
                 matchResources={"namespaceSelector": {"matchLabels": {"vap-test": ns}},
                                 "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]},
                                 "excludeResourceRules": excluded}))
    out = create_cm(srv, ns, "bad")
    assert out.returncode == 1 and "denied request: names must start with good" in out.stderr
    assert create_cm(srv, ns, "good-one").returncode == 0
    assert create_cm(srv, ns, "exempt").returncode == 0, "excludeResourceRules by resourceNames"
    assert create_cm(srv, ns, "labelled", labels={"skip": "yes"}).returncode == 0, "objectSelector"
    assert create_cm(srv, ns, "opted", data={"opt-out": "1"}).returncode == 0, "matchConditions"
    # The binding's namespaceSelector keeps other namespaces out.
    other = f"{ns}-other"
    srv.kubectl("create", "namespace", other, check=True)
    try:
        assert create_cm(srv, other, "bad").returncode == 0
    finally:
        srv.kubectl("delete", "namespace", other, "--wait=false")


def test_params_by_selector_and_parameter_not_found_action(srv, made, ns):
    made(configmap_policy(
        f"{ns}.example.com",
        [{"expression": "size(object.data) <= int(params.data.max)",
          "messageExpression": "'at most ' + params.data.max + ' keys'"}],
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
        matchConstraints={"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                             "resources": ["configmaps"]}],
                          "objectSelector": {"matchLabels": {"checked": "true"}}}))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Deny"],
                 paramRef={"selector": {"matchLabels": {"limit": "yes"}}, "parameterNotFoundAction": "Allow"}))
    three = {"a": "1", "b": "2", "c": "3"}
    # No parameter object: Allow admits.
    assert create_cm(srv, ns, "first", labels={"checked": "true"}, data=three).returncode == 0
    assert create_cm(srv, ns, "limit-five", labels={"limit": "yes"}, data={"max": "5"}).returncode == 0
    assert create_cm(srv, ns, "limit-two", labels={"limit": "yes"}, data={"max": "2"}).returncode == 0
    # Every selected parameter object is checked; the stricter one refuses.
    out = create_cm(srv, ns, "second", labels={"checked": "true"}, data=three)
    assert out.returncode == 1 and "denied request: at most 2 keys" in out.stderr
    assert create_cm(srv, ns, "third", labels={"checked": "true"}, data={"a": "1"}).returncode == 0
    header, row = srv.kubectl("get", "validatingadmissionpolicybinding", f"{ns}-binding.example.com",
                              check=True).stdout.splitlines()
    assert row.split()[2] == "limit=yes"


def test_failure_policy_decides_when_an_expression_fails(srv, made, ns):
    for fp in ("Fail", "Ignore"):
        made(configmap_policy(f"{ns}-{fp.lower()}.example.com", [{"expression": "object.data.missing == 'x'"}],
                              failurePolicy=fp,
                              matchConstraints={"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""],
                                                                   "apiVersions": ["v1"], "resources": ["configmaps"]}],
                                                "objectSelector": {"matchLabels": {"policy": fp}}}))
        made(binding(f"{ns}-{fp.lower()}-binding.example.com", f"{ns}-{fp.lower()}.example.com", ns, ["Deny"]))
    out = create_cm(srv, ns, "failing", labels={"policy": "Fail"}, data={"present": "1"})
    assert out.returncode == 1
    assert (f"ValidatingAdmissionPolicy '{ns}-fail.example.com' with binding '{ns}-fail-binding.example.com' "
            "denied request: expression 'object.data.missing == 'x'' resulted in error: no such key: missing") \
        in out.stderr
    assert create_cm(srv, ns, "ignored", labels={"policy": "Ignore"}, data={"present": "1"}).returncode == 0


def test_audit_action_admits_without_a_warning(srv, made, ns):
    made(policy(f"{ns}.example.com", [{"expression": "object.spec.replicas <= 5"}]))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Audit"]))
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=deployment("audited", 8))
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr


def test_audit_annotations_are_validated_and_evaluated(srv, made, ns):
    bad = configmap_policy(f"{ns}-bad.example.com", [], auditAnnotations=[
        {"key": "bad key", "valueExpression": "'x'"}, {"key": "empty", "valueExpression": " "}])
    out = srv.kubectl("create", "-f", "-", input=json.dumps(bad))
    assert out.returncode == 1
    assert 'spec.auditAnnotations[0].key: Invalid value: "bad key"' in out.stderr
    assert "spec.auditAnnotations[1].valueExpression: Required value: valueExpression is not specified" in out.stderr
    made(configmap_policy(f"{ns}.example.com", [], auditAnnotations=[
        {"key": "size", "valueExpression": "size(object.data)"},
        {"key": "name", "valueExpression": "object.metadata.name"}]))
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Audit"]))
    out = create_cm(srv, ns, "annotated", data={"a": "1"})
    assert out.returncode == 1
    assert ("denied request: valueExpression 'size(object.data)' resulted in unsupported return type: int. "
            "Return type must be either string or null.") in out.stderr


def test_deletes_are_checked_with_old_object_request_and_namespace_object(srv, made, ns):
    rules = [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]
    made({"apiVersion": GV, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": f"{ns}.example.com"},
          "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules},
                   "validations": [
                       {"expression": "object == null && oldObject.metadata.name != 'keep'",
                        "messageExpression": "'keep ' + request.name + ' in ' + namespaceObject.metadata.name"},
                       {"expression": "request.operation == 'DELETE' && request.options.kind == 'DeleteOptions' && "
                                      "request.uid != '' && request.resource.resource == 'configmaps' && "
                                      "!has(namespaceObject.metadata.managedFields) && "
                                      "namespaceObject.status.phase == 'Active'",
                        "message": "the request is not as upstream describes it"}]}})
    made(binding(f"{ns}-binding.example.com", f"{ns}.example.com", ns, ["Deny"]))
    for name in ("keep", "drop"):
        assert create_cm(srv, ns, name).returncode == 0
    out = srv.kubectl("delete", "configmap", "-n", ns, "keep")
    assert out.returncode == 1
    assert f"denied request: keep keep in {ns}" in out.stderr
    out = srv.kubectl("delete", "configmap", "-n", ns, "drop")
    assert out.returncode == 0, out.stderr
