"""Admission webhooks (upstream test/e2e/apimachinery/webhook.go, rebuilt): a webhook server
over TLS in the test, configurations written with kubectl 1.33 and the Python client."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import API_ONLY, KUBECTL_OLD, audit_events, audit_flags, free_port, namespace_name, start_server
from crdkit import crd, create_crd, unique_group, version
from webhookkit import SERVICE_NAME, SERVICE_NAMESPACE, WebhookServer

Obj = dict


AUDIT_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- {level: Metadata, verbs: [create], omitStages: [RequestReceived], resources: [{group: "", resources: [configmaps]}]}
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("webhooks")
    flags, _ = audit_flags(tmp, AUDIT_POLICY)
    s = start_server(tmp, *API_ONLY, *flags)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def hooks():
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def ns(request, srv):
    """A namespace of its own, labelled so that only this test's webhooks select it."""
    name = namespace_name(request, "wh")
    srv.kubectl("create", "namespace", name, check=True)
    srv.kubectl("label", "namespace", name, f"webhook-test={name}", check=True)
    return name


@pytest.fixture
def configs(srv):
    """Webhook configurations a test registers; deleted afterwards."""
    made: list[tuple[str, str]] = []

    def register(kind: str, name: str, webhooks: list[Obj]) -> Obj:
        obj = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
               "webhooks": webhooks}
        out = srv.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(obj))
        assert out.returncode == 0, out.stderr
        made.append((kind, name))
        return json.loads(out.stdout)

    yield register
    for kind, name in made:
        srv.kubectl("delete", kind.lower(), name, "--ignore-not-found")


def webhook(hooks: WebhookServer, ns: str, path: str, name: str, *, resources=("configmaps",), groups=("",),
            operations=("CREATE", "UPDATE"), **extra) -> Obj:
    """One webhook calling ``path`` for the objects of namespace ``ns`` only."""
    hook = {"name": name, "sideEffects": "None", "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"url": hooks.url(path), "caBundle": hooks.ca_bundle},
            "rules": [{"operations": list(operations), "apiGroups": list(groups), "apiVersions": ["*"],
                       "resources": list(resources)}],
            "namespaceSelector": {"matchLabels": {"webhook-test": ns}}}
    hook.update(extra)
    return hook


def configmap(name: str, **data: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


def pod(name: str, labels: dict | None = None) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
                       "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}})


DISALLOW = {"webhook-e2e-test": "webhook-disallow"}


# --- webhook configurations as API objects ---------------------------------------------------

def test_should_include_webhook_resources_in_discovery_documents(srv):
    out = json.loads(srv.kubectl("get", "--raw", "/apis/admissionregistration.k8s.io/v1", check=True).stdout)
    names = {r["name"]: r for r in out["resources"]}
    assert names["mutatingwebhookconfigurations"]["namespaced"] is False
    assert names["validatingwebhookconfigurations"]["kind"] == "ValidatingWebhookConfiguration"
    out = srv.kubectl("api-resources", "--api-group", "admissionregistration.k8s.io", check=True)
    assert "mutatingwebhookconfigurations" in out.stdout and "validatingwebhookconfigurations" in out.stdout


def test_webhook_configurations_are_defaulted_and_printed(srv, hooks, configs, ns):
    made = configs("ValidatingWebhookConfiguration", f"{ns}-defaults",
                   [webhook(hooks, ns, "/deny", "deny.defaults.example.com"),
                    webhook(hooks, ns, "/deny", "deny2.defaults.example.com")])
    hook = made["webhooks"][0]
    assert hook["failurePolicy"] == "Fail" and hook["matchPolicy"] == "Equivalent"
    assert hook["timeoutSeconds"] == 10 and hook["objectSelector"] == {}
    assert hook["rules"][0]["scope"] == "*"
    m = configs("MutatingWebhookConfiguration", f"{ns}-mdefaults", [webhook(hooks, ns, "/warn", "w.defaults.example.com")])
    assert m["webhooks"][0]["reinvocationPolicy"] == "Never"
    out = srv.kubectl("get", "validatingwebhookconfiguration", f"{ns}-defaults", check=True)
    header, row = out.stdout.splitlines()
    assert header.split() == ["NAME", "WEBHOOKS", "AGE"]
    assert row.split()[:2] == [f"{ns}-defaults", "2"]


def test_webhook_configuration_validation_messages(srv, hooks):
    bad = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "invalid-webhooks"},
           "webhooks": [
               {"name": "short", "clientConfig": {"url": "http://127.0.0.1:1/x"},
                "rules": [{"operations": ["CREATE", "FROB"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["*", "pods"], "scope": "Everywhere"}],
                "timeoutSeconds": 31},
               {"name": "dup.example.com.x", "sideEffects": "Some", "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://127.0.0.1:1/x", "service": {"namespace": "a", "name": "b"}},
                "matchConditions": [{"name": "m", "expression": "object.metadata.name =="}]},
               {"name": "dup.example.com.x", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "", "name": "b", "port": 70000}}}]}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(bad))
    assert out.returncode == 1
    err = out.stderr
    assert err.startswith('The ValidatingWebhookConfiguration "invalid-webhooks" is invalid: ')
    for line in [
        'webhooks[0].name: Invalid value: "short": should be a domain with at least three segments separated by dots',
        'webhooks[0].rules[0].operations[1]: Unsupported value: "FROB": supported values: "*", "CONNECT", '
        '"CREATE", "DELETE", "UPDATE"',
        'webhooks[0].rules[0].resources: Invalid value: []string{"*", "pods"}: if \'*\' is present, must not '
        'specify other resources without subresources',
        'webhooks[0].rules[0].scope: Unsupported value: "Everywhere": supported values: "*", "Cluster", "Namespaced"',
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
        "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
        'webhooks[0].clientConfig.url: Invalid value: "http": \'https\' is the only allowed URL scheme',
        "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
        'webhooks[1].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
        "webhooks[1].clientConfig: Required value: exactly one of url or service is required",
        'webhooks[1].matchConditions[0].expression: Invalid value: "object.metadata.name ==": compilation failed',
        "webhooks[2].clientConfig.service.namespace: Required value: service namespace is required",
        "webhooks[2].clientConfig.service.port: Invalid value: 70000: port is not valid: must be between 1 and "
        "65535, inclusive",
        'webhooks[2].name: Duplicate value: "dup.example.com.x"',
    ]:
        assert line in err, f"{line!r} not in {err!r}"


def test_listing_validating_webhooks_should_work(srv, hooks, configs, ns):
    from kubernetes import client, config
    api = client.AdmissionregistrationV1Api(config.new_client_from_config(srv.kubeconfig))
    for i in range(3):
        configs("ValidatingWebhookConfiguration", f"{ns}-list-{i}",
                [webhook(hooks, ns, "/deny", f"deny.list{i}.example.com")])
        srv.kubectl("label", "validatingwebhookconfiguration", f"{ns}-list-{i}", f"list-test={ns}", check=True)
    listed = api.list_validating_webhook_configuration(label_selector=f"list-test={ns}")
    assert sorted(c.metadata.name for c in listed.items) == [f"{ns}-list-{i}" for i in range(3)]
    # The webhooks are live: a configmap the webhook refuses is refused.
    denied = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("cm-denied", **DISALLOW))
    assert denied.returncode == 1
    api.delete_collection_validating_webhook_configuration(label_selector=f"list-test={ns}")
    assert api.list_validating_webhook_configuration(label_selector=f"list-test={ns}").items == []
    # Removed, the webhooks no longer refuse it.
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("cm-allowed", **DISALLOW))
    assert out.returncode == 0, out.stderr


def test_patching_updating_a_validating_webhook_should_work(srv, hooks, configs, ns):
    name = f"{ns}-patch"
    configs("ValidatingWebhookConfiguration", name, [webhook(hooks, ns, "/deny", "deny.patch.example.com")])
    assert srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("cm1", **DISALLOW)).returncode == 1
    # Update: the rule no longer covers CREATE, so the configmap is admitted.
    from kubernetes import client, config
    api = client.AdmissionregistrationV1Api(config.new_client_from_config(srv.kubeconfig))
    cur = api.read_validating_webhook_configuration(name)
    cur.webhooks[0].rules[0].operations = ["UPDATE"]
    api.replace_validating_webhook_configuration(name, cur)
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("cm2", **DISALLOW))
    assert out.returncode == 0, out.stderr
    # Patch: CREATE again, and the configmap is refused again.
    patch = [{"op": "replace", "path": "/webhooks/0/rules/0/operations", "value": ["CREATE"]}]
    srv.kubectl("patch", "validatingwebhookconfiguration", name, "--type=json", "-p", json.dumps(patch), check=True)
    assert srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("cm3", **DISALLOW)).returncode == 1


# --- validating webhooks ----------------------------------------------------------------------

def test_should_be_able_to_deny_pod_and_configmap_creation(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-deny",
            [webhook(hooks, ns, "/deny", "deny-unwanted.k8s.io", resources=("configmaps", "pods"))])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("disallowed", **DISALLOW))
    assert out.returncode == 1
    assert out.stderr.strip() == ('Error from server: error when creating "STDIN": admission webhook '
                                  '"deny-unwanted.k8s.io" denied the request: the configmap contains unwanted key '
                                  'and value')
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=pod("disallowed-pod", DISALLOW))
    assert out.returncode == 1
    # The webhook's own code and reason (403 Forbidden) reach the client.
    assert 'Error from server (Forbidden): error when creating "STDIN": admission webhook "deny-unwanted.k8s.io" ' \
           "denied the request: the pod contains unwanted label" in out.stderr
    raw = srv.kubectl("create", "-n", ns, "-f", "-", "-v=8", input=pod("disallowed-pod", DISALLOW))
    assert "403 Forbidden" in raw.stderr
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("allowed", key="value"))
    assert out.returncode == 0, out.stderr
    # An update to the forbidden value is refused too, with the old object in the review.
    out = srv.kubectl("patch", "-n", ns, "configmap", "allowed", "-p", json.dumps({"data": DISALLOW}))
    assert out.returncode == 1 and "the configmap contains unwanted key and value" in out.stderr
    update = [r for r in hooks.seen("/deny") if r["request"]["operation"] == "UPDATE"
              and r["request"]["name"] == "allowed"][-1]["request"]
    assert update["oldObject"]["data"] == {"key": "value"}
    assert update["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert update["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert update["namespace"] == ns and update["options"]["kind"] == "UpdateOptions"
    assert update["userInfo"]["username"] == "kubelite-admin"


def test_the_admission_review_describes_the_request(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-review",
            [webhook(hooks, ns, "/deny", "review.example.com", operations=("*",))])
    srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("described", key="v"), check=True)
    srv.kubectl("delete", "-n", ns, "configmap", "described", check=True)
    mine = [r for r in hooks.seen("/deny") if r["request"]["namespace"] == ns]
    create, delete = mine[0], mine[-1]
    assert create["apiVersion"] == "admission.k8s.io/v1" and create["kind"] == "AdmissionReview"
    assert create["_query"] == {"timeout": "10s"}
    req = create["request"]
    assert req["operation"] == "CREATE" and req["name"] == "described" and req["oldObject"] is None
    assert req["object"]["data"] == {"key": "v"} and req["dryRun"] is False
    assert req["requestKind"] == req["kind"] and req["requestResource"] == req["resource"]
    assert req["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    assert req["userInfo"]["username"] == "kubelite-admin"
    assert set(req["userInfo"]["groups"]) == {"system:masters", "system:authenticated"}
    d = delete["request"]
    assert d["operation"] == "DELETE" and d["object"] is None and d["oldObject"]["data"] == {"key": "v"}
    assert d["options"]["kind"] == "DeleteOptions"


def test_should_not_be_able_to_mutate_or_prevent_deletion_of_webhook_configuration_objects(srv, hooks, configs, ns):
    # A webhook that refuses everything about webhook configurations is never asked about them.
    hook = webhook(hooks, "", "/always-deny", "deny-webhook-configuration-deletions.k8s.io",
                   resources=("validatingwebhookconfigurations", "mutatingwebhookconfigurations"),
                   groups=("admissionregistration.k8s.io",), operations=("*",))
    del hook["namespaceSelector"]
    configs("ValidatingWebhookConfiguration", f"{ns}-protector", [hook])
    m = webhook(hooks, "", "/mutate-configmap", "mutate-configurations.k8s.io",
                resources=("validatingwebhookconfigurations", "mutatingwebhookconfigurations"),
                groups=("admissionregistration.k8s.io",), operations=("*",))
    del m["namespaceSelector"]
    configs("MutatingWebhookConfiguration", f"{ns}-mutator", [m])
    victim = configs("ValidatingWebhookConfiguration", f"{ns}-victim", [webhook(hooks, ns, "/deny", "v.example.com")])
    assert "data" not in victim
    out = srv.kubectl("delete", "validatingwebhookconfiguration", f"{ns}-victim")
    assert out.returncode == 0, out.stderr
    assert not [r for r in hooks.reviews if r["request"]["resource"]["group"] == "admissionregistration.k8s.io"]


def test_should_honor_timeout(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-slow-fail",
            [webhook(hooks, ns, "/slow", "slow-fail.example.com", timeoutSeconds=1)])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("slow1"))
    assert out.returncode == 1
    assert ('Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed calling '
            f'webhook "slow-fail.example.com": failed to call webhook: Post "{hooks.url("/slow")}?timeout=1s": '
            "context deadline exceeded") in out.stderr
    srv.kubectl("delete", "validatingwebhookconfiguration", f"{ns}-slow-fail", check=True)
    configs("ValidatingWebhookConfiguration", f"{ns}-slow-ignore",
            [webhook(hooks, ns, "/slow", "slow-ignore.example.com", timeoutSeconds=1, failurePolicy="Ignore")])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("slow2"))
    assert out.returncode == 0, out.stderr


def test_should_unconditionally_reject_operations_on_fail_closed_webhook(srv, hooks, configs, ns):
    down = f"https://127.0.0.1:{free_port()}/nothing-here"
    hook = webhook(hooks, ns, "/deny", "fail-closed.k8s.io")
    hook["clientConfig"]["url"] = down
    configs("ValidatingWebhookConfiguration", f"{ns}-closed", [hook])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("closed"))
    assert out.returncode == 1
    assert (f'Internal error occurred: failed calling webhook "fail-closed.k8s.io": failed to call webhook: '
            f'Post "{down}?timeout=10s": dial tcp 127.0.0.1:') in out.stderr
    assert "connect: connection refused" in out.stderr


def test_failure_policy_ignore_admits_when_the_webhook_is_down(srv, hooks, configs, ns):
    hook = webhook(hooks, ns, "/deny", "fail-open.k8s.io", failurePolicy="Ignore")
    hook["clientConfig"]["url"] = f"https://127.0.0.1:{free_port()}/nothing-here"
    configs("ValidatingWebhookConfiguration", f"{ns}-open", [hook])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("open"))
    assert out.returncode == 0, out.stderr


def test_a_certificate_the_ca_bundle_does_not_sign_is_refused(srv, hooks, configs, ns):
    hook = webhook(hooks, ns, "/deny", "wrong-ca.k8s.io")
    del hook["clientConfig"]["caBundle"]
    configs("ValidatingWebhookConfiguration", f"{ns}-wrongca", [hook])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("wrongca"))
    assert out.returncode == 1
    assert 'failed calling webhook "wrong-ca.k8s.io": failed to call webhook: Post' in out.stderr
    assert "certificate" in out.stderr


def test_namespace_and_object_selectors_choose_what_is_sent(srv, hooks, configs, ns, request):
    other = namespace_name(request, "wh-other")
    srv.kubectl("create", "namespace", other, check=True)
    configs("ValidatingWebhookConfiguration", f"{ns}-selectors",
            [webhook(hooks, ns, "/always-deny", "selected.example.com",
                     objectSelector={"matchLabels": {"checked": "yes"}})])
    # Another namespace: not selected, admitted.
    out = srv.kubectl("create", "-n", other, "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"checked": "yes"}}}))
    assert out.returncode == 0, out.stderr
    # This namespace, but the object's labels do not match: admitted.
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("unlabelled"))
    assert out.returncode == 0, out.stderr
    # Both match: the webhook is asked, and refuses.
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "labels": {"checked": "yes"}}}))
    assert out.returncode == 1 and "this webhook denies all requests" in out.stderr
    # Labelling an admitted object makes the update match: refused.
    out = srv.kubectl("label", "-n", ns, "configmap", "unlabelled", "checked=yes")
    assert out.returncode == 1 and "this webhook denies all requests" in out.stderr
    srv.kubectl("delete", "namespace", other, "--wait=false")


def test_match_conditions_choose_what_is_sent(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-conditions",
            [webhook(hooks, ns, "/always-deny", "conditions.example.com", matchConditions=[
                {"name": "only-named-deny", "expression": "object.metadata.name.startsWith('deny')"},
                {"name": "not-dry-run", "expression": "request.dryRun == false"}])])
    assert srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("keep")).returncode == 0
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("deny-me"))
    assert out.returncode == 1 and "this webhook denies all requests" in out.stderr


def test_webhook_warnings_reach_the_client(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-warn", [webhook(hooks, ns, "/warn", "warn.example.com")])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("warned"))
    assert out.returncode == 0, out.stderr
    assert "Warning: the webhook says: mind the gap" in out.stderr


def test_webhook_audit_annotations_reach_the_audit_log(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-annotate", [webhook(hooks, ns, "/annotate", "annotate.example.com")])
    out = srv.kubectl("create", "-n", ns, "-f", "-", input=configmap("annotated"))
    assert out.returncode == 0, out.stderr
    ev = next(e for e in audit_events(srv.data_dir.parent / "audit.log")
              if e.get("objectRef", {}).get("name") == "annotated" and e["verb"] == "create")
    assert ev["annotations"]["annotate.example.com/reviewed-by"] == "the test's webhook"


def test_dry_run_requests_are_sent_to_webhooks_without_side_effects(srv, hooks, configs, ns):
    configs("ValidatingWebhookConfiguration", f"{ns}-dry", [webhook(hooks, ns, "/deny", "dry.example.com")])
    before = len(hooks.seen("/deny"))
    out = srv.kubectl("create", "-n", ns, "--dry-run=server", "-f", "-", input=configmap("dry", **DISALLOW))
    assert out.returncode == 1 and "the configmap contains unwanted key and value" in out.stderr
    reviews = hooks.seen("/deny")[before:]
    assert reviews and reviews[-1]["request"]["dryRun"] is True
    assert reviews[-1]["request"]["options"]["dryRun"] == ["All"]
    out = srv.kubectl("create", "-n", ns, "--dry-run=server", "-f", "-", input=configmap("dry2"))
    assert out.returncode == 0, out.stderr
    assert srv.kubectl("get", "-n", ns, "configmap", "dry2").returncode == 1  # not stored


def test_a_webhook_with_side_effects_refuses_a_dry_run():
    # Only configurations stored before the rule existed can hold such a webhook, so the
    # dispatcher is asked directly.
    import asyncio

    from kubelite.api import errors
    from kubelite.apiserver.webhooks.dispatcher import Webhooks
    from kubelite.apiserver.webhooks.source import Hook, _selector

    hook = Hook("old-config", False, {"name": "side-effects.example.com", "sideEffects": "Some",
                                      "clientConfig": {"url": "https://127.0.0.1:9/x"}},
                _selector({}), _selector({}))
    review = {"request": {"uid": "1", "dryRun": True}}
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(Webhooks.__new__(Webhooks)._call(hook, review))
    assert (e.value.code, e.value.reason) == (400, "BadRequest")
    assert str(e.value) == 'admission webhook "side-effects.example.com" does not support dry run'


# --- mutating webhooks ----------------------------------------------------------------------

def test_should_mutate_configmap(srv, hooks, configs, ns):
    configs("MutatingWebhookConfiguration", f"{ns}-mutate-cm",
            [webhook(hooks, ns, "/mutate-configmap", "adding-configmap-data-stage-1.k8s.io")])
    out = srv.kubectl("create", "-n", ns, "-f", "-", "-o", "json", input=configmap("to-be-mutated", original="1"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"] == {"original": "1", "mutation-stage-1": "yes"}
    assert srv.kjson("get", "-n", ns, "configmap", "to-be-mutated")["data"]["mutation-stage-1"] == "yes"


def test_should_mutate_configmap_with_reinvocation(srv, hooks, configs, ns):
    # Stage 2 runs first (its configuration's name sorts first) and only acts after stage 1,
    # so it has to be called again: reinvocationPolicy IfNeeded.
    configs("MutatingWebhookConfiguration", f"{ns}-a-stage2",
            [webhook(hooks, ns, "/mutate-configmap-stage-2", "stage-2.k8s.io", reinvocationPolicy="IfNeeded")])
    configs("MutatingWebhookConfiguration", f"{ns}-b-stage1",
            [webhook(hooks, ns, "/mutate-configmap", "stage-1.k8s.io")])
    out = srv.kubectl("create", "-n", ns, "-f", "-", "-o", "json", input=configmap("reinvoked"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"] == {"mutation-stage-1": "yes", "mutation-stage-2": "yes"}


def test_should_mutate_pod_and_apply_defaults_after_mutation(srv, hooks, configs, ns):
    configs("MutatingWebhookConfiguration", f"{ns}-mutate-pod",
            [webhook(hooks, ns, "/mutate-pod", "adding-init-container.k8s.io", resources=("pods",))])
    out = srv.kubectl("create", "-n", ns, "-f", "-", "-o", "json", input=pod("webhook-to-be-mutated"))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    init = got["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["webhook-added-init-container"]
    # Defaults apply to what the webhook added.
    assert init[0]["terminationMessagePolicy"] == "File" and init[0]["imagePullPolicy"] == "IfNotPresent"
    # The webhook saw a defaulted pod.
    seen = [r for r in hooks.seen("/mutate-pod") if r["request"]["namespace"] == ns][-1]["request"]["object"]
    assert seen["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"


def test_should_deny_crd_creation(srv, hooks, configs, ns):
    hook = webhook(hooks, ns, "/always-deny", "deny-crd-with-unwanted-label.k8s.io",
                   resources=("customresourcedefinitions",), groups=("apiextensions.k8s.io",),
                   objectSelector={"matchLabels": {"webhook-e2e-test": "webhook-disallow"}})
    del hook["namespaceSelector"]
    configs("ValidatingWebhookConfiguration", f"{ns}-deny-crd", [hook])
    manifest = crd(unique_group("deny"), plural="denieds", kind="Denied", versions=[version("v1")])
    manifest["metadata"]["labels"] = DISALLOW
    out = srv.kubectl("create", "-f", "-", input=json.dumps(manifest))
    assert out.returncode == 1
    assert 'admission webhook "deny-crd-with-unwanted-label.k8s.io" denied the request: this webhook denies all ' \
           "requests" in out.stderr


def test_should_mutate_custom_resource(srv, hooks, configs, ns):
    group = unique_group("mutate")
    schema = {"type": "object", "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}}}
    create_crd(srv, crd(group, plural="mutatables", kind="Mutatable", versions=[version("v1", schema=schema)]))
    configs("MutatingWebhookConfiguration", f"{ns}-mutate-cr",
            [webhook(hooks, ns, "/mutate-cr", "mutate-custom-resource-data-stage-1.k8s.io",
                     resources=("mutatables",), groups=(group,))])
    obj = {"apiVersion": f"{group}/v1", "kind": "Mutatable", "metadata": {"name": "cr-instance"},
           "data": {"mutation-start": "yes"}}
    out = srv.kubectl("create", "-n", ns, "-f", "-", "-o", "json", input=json.dumps(obj))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"] == {"mutation-start": "yes", "mutation-stage-1": "yes"}
    seen = [r for r in hooks.seen("/mutate-cr") if r["request"]["namespace"] == ns][-1]["request"]
    assert seen["kind"] == {"group": group, "version": "v1", "kind": "Mutatable"}


def test_a_webhook_reached_through_a_service(srv, hooks, configs):
    # A Service without a selector and hand-made Endpoints lead to the test's server.
    srv.kubectl("create", "namespace", SERVICE_NAMESPACE, check=True)
    srv.kubectl("label", "namespace", SERVICE_NAMESPACE, f"webhook-test={SERVICE_NAMESPACE}", check=True)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE},
           "spec": {"ports": [{"port": 8443, "targetPort": hooks.port}]}}
    eps = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE},
           "subsets": [{"addresses": [{"ip": "127.0.0.1", "targetRef": {"kind": "Pod", "name": "webhook-pod",
                                                                      "namespace": SERVICE_NAMESPACE}}],
                        "ports": [{"port": hooks.port}]}]}
    for o in (svc, eps):
        srv.kubectl("create", "-f", "-", input=json.dumps(o), check=True)
    hook = webhook(hooks, SERVICE_NAMESPACE, "/deny", "through-service.k8s.io")
    hook["clientConfig"] = {"service": {"namespace": SERVICE_NAMESPACE, "name": SERVICE_NAME, "path": "/deny",
                                        "port": 8443}, "caBundle": hooks.ca_bundle}
    made = configs("ValidatingWebhookConfiguration", "through-service", [hook])
    assert made["webhooks"][0]["clientConfig"]["service"]["port"] == 8443
    out = srv.kubectl("create", "-n", SERVICE_NAMESPACE, "-f", "-", input=configmap("svc-denied", **DISALLOW))
    assert out.returncode == 1
    assert 'admission webhook "through-service.k8s.io" denied the request' in out.stderr
    out = srv.kubectl("create", "-n", SERVICE_NAMESPACE, "-f", "-", input=configmap("svc-allowed"))
    assert out.returncode == 0, out.stderr


def test_kubectl_1_28_prints_the_denial(srv, hooks, configs, ns):
    if not os.path.exists(KUBECTL_OLD):
        pytest.fail(f"{KUBECTL_OLD} is missing")
    configs("ValidatingWebhookConfiguration", f"{ns}-old", [webhook(hooks, ns, "/deny", "deny-old.k8s.io")])
    out = srv.kubectl("create", "-n", ns, "-f", "-", binary=KUBECTL_OLD, input=configmap("old", **DISALLOW))
    assert isinstance(out, subprocess.CompletedProcess) and out.returncode == 1
    assert 'admission webhook "deny-old.k8s.io" denied the request: the configmap contains unwanted key and value' \
        in out.stderr


@pytest.mark.parametrize("policy", ["Equivalent", "Exact"])
def test_match_policy_decides_whether_an_equivalent_resource_is_sent(srv, hooks, configs, ns, policy):
    # The rule names events.k8s.io/v1 Events; a core/v1 Event is the same stored object.
    configs("ValidatingWebhookConfiguration", f"{ns}-{policy.lower()}",
            [webhook(hooks, ns, "/deny", f"{policy.lower()}.events.example.com", resources=("events",),
                     groups=("events.k8s.io",), matchPolicy=policy)])
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev"},
             "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns}, "reason": "Tested",
             "message": "a core event", "type": "Normal", "source": {"component": "test"}}
    srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(event), check=True)
    sent = [r["request"] for r in hooks.seen("/deny") if r["request"].get("namespace") == ns]
    if policy == "Exact":
        assert sent == []
        return
    (req,) = sent
    assert req["kind"] == {"group": "events.k8s.io", "version": "v1", "kind": "Event"}
    assert req["requestKind"] == {"group": "", "version": "v1", "kind": "Event"}
    assert req["resource"]["group"] == "events.k8s.io"
    assert req["object"]["apiVersion"] == "events.k8s.io/v1" and req["object"]["note"] == "a core event"
