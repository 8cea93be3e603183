"""Validation reports upstream's field paths and messages (kube-apiserver v1.28 wording)."""
from __future__ import annotations

import copy

import pytest

from kubelite.api.defaults import admit_pod, apply_defaults
from kubelite.api.errors import invalid as invalid_error
from kubelite.api.validation import generation_changed, node_port_range_errors, validate, validate_status

DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                 "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                 "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def deployment(**spec):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}
    d["spec"].update(spec)
    apply_defaults("Deployment", "apps/v1", d)
    return d


def pod(**spec):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
         "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    p["spec"].update(spec)
    apply_defaults("Pod", "v1", p)
    admit_pod(p, token_volume=False)
    return p


def service(**spec):
    s = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}
    s["spec"].update(spec)
    apply_defaults("Service", "v1", s)
    return s


def msgs(kind, obj, old=None, api_version="v1"):
    return [(c.field, c.message) for c in validate(kind, api_version, obj, old)]


# --- metadata --------------------------------------------------------------------------

def test_valid_objects_pass():
    assert msgs("Deployment", deployment()) == []
    assert msgs("Pod", pod()) == []
    assert msgs("Service", service()) == []


def test_name_required_unless_generate_name():
    d = deployment()
    del d["metadata"]["name"]
    assert msgs("Deployment", d) == [("metadata.name", "Required value: name or generateName is required")]


def test_generate_name_trailing_dash_allowed():
    d = deployment()
    d["metadata"] = {"generateName": "web-", "name": "web-abcde", "namespace": "default"}
    assert msgs("Deployment", d) == []


@pytest.mark.parametrize("kind,name,message", [
    ("Deployment", "Web", DNS1123_SUBDOMAIN),
    ("ConfigMap", "a_b", DNS1123_SUBDOMAIN),
    ("Namespace", "a.b", "must not contain dots"),
    ("Namespace", "-a", DNS1123_LABEL),
    ("Service", "1web", DNS1035_LABEL),
])
def test_name_rules_per_kind(kind, name, message):
    obj = {"metadata": {"name": name}}
    if kind != "Namespace":
        obj["metadata"]["namespace"] = "default"
    if kind == "Deployment":
        obj = deployment()
        obj["metadata"]["name"] = name
    if kind == "Service":
        obj = service()
        obj["metadata"]["name"] = name
    assert ("metadata.name", f'Invalid value: "{name}": {message}') in msgs(kind, obj)


def test_name_too_long():
    cm = {"metadata": {"name": "a" * 254, "namespace": "default"}}
    assert msgs("ConfigMap", cm)[0] == ("metadata.name", f'Invalid value: "{"a" * 254}": must be no more than 253 characters')


def test_labels_and_annotations():
    cm = {"metadata": {"name": "c", "namespace": "default", "labels": {"bad key!": "v", "ok": "bad value!"},
                       "annotations": {"example.com/x": "any value at all !"}}}
    got = msgs("ConfigMap", cm)
    assert got == [
        ("metadata.labels", 'Invalid value: "bad key!": name part must consist of alphanumeric characters, \'-\', '
                            "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                            "'my.name',  or '123-abc', regex used for validation is "
                            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        ("metadata.labels", 'Invalid value: "bad value!": a valid label must be an empty string or consist of '
                            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                            "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ]


def test_namespace_forbidden_on_cluster_scoped():
    ns = {"metadata": {"name": "a", "namespace": "x"}}
    apply_defaults("Namespace", "v1", ns)
    assert msgs("Namespace", ns) == [("metadata.namespace", "Forbidden: not allowed on this type")]


def test_update_requires_resource_version_and_keeps_name():
    old = deployment()
    old["metadata"]["resourceVersion"] = "5"
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = ""
    new["metadata"]["uid"] = "other"
    assert msgs("Deployment", new, old) == [
        ("metadata.resourceVersion", 'Invalid value: "": must be specified for an update'),
        ("metadata.uid", 'Invalid value: "other": field is immutable'),
    ]


# --- Deployment / ReplicaSet -----------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ({"replicas": -1}, [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"revisionHistoryLimit": -2}, [("spec.revisionHistoryLimit", "Invalid value: -2: must be greater than or equal to 0")]),
    ({"minReadySeconds": 700}, [("spec.progressDeadlineSeconds", "Invalid value: 600: must be greater than minReadySeconds")]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}},
     [("spec.strategy.rollingUpdate.maxUnavailable",
       'Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0')]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}}},
     [("spec.strategy.rollingUpdate.maxUnavailable",
       'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: may not be 0 when `maxSurge` is 0')]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "120%"}}},
     [("spec.strategy.rollingUpdate.maxSurge",
       'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"x"}: a valid percent string must be a numeric '
       "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
      ("spec.strategy.rollingUpdate.maxUnavailable",
       'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"120%"}: must not be greater than 100%')]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": -1, "maxUnavailable": 1}}},
     [("spec.strategy.rollingUpdate.maxSurge", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
     [("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")]),
])
def test_deployment_spec_errors(spec, expected):
    d = deployment()
    d["spec"].update(spec)
    assert msgs("Deployment", d, api_version="apps/v1") == expected


def test_deployment_selector_required_and_must_match():
    d = deployment()
    del d["spec"]["selector"]
    assert ("spec.selector", "Required value") in msgs("Deployment", d)
    d = deployment()
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert msgs("Deployment", d) == [
        ("spec.template.metadata.labels",
         'Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`')]
    d = deployment(selector={})
    assert msgs("Deployment", d) == [
        ("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment")]


def test_deployment_selector_expressions():
    d = deployment(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]},
                                                  {"key": "tier", "operator": "Bogus"}]})
    assert msgs("Deployment", d) == [("spec.selector.matchExpressions[1].operator",
                                      'Invalid value: "Bogus": not a valid selector operator'),
                                     ("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), '
                                      'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", '
                                      'Operator:"In", Values:[]string{"web", "api"}}, v1.LabelSelectorRequirement{Key:"tier", '
                                      'Operator:"Bogus", Values:[]string(nil)}}}: invalid label selector')]


def test_deployment_template_restart_policy_must_be_always():
    d = deployment()
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert msgs("Deployment", d) == [
        ("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')]


def test_deployment_selector_immutable():
    old = deployment()
    old["metadata"]["resourceVersion"] = "3"
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    new["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}
    assert msgs("Deployment", new, old) == [
        ("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
                          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable")]


def test_invalid_error_text_as_kubectl_prints_it():
    d = deployment(replicas=-1)
    err = invalid_error("Deployment", "apps", "web", validate("Deployment", "apps/v1", d))
    assert err.message == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: '
                           "must be greater than or equal to 0")
    assert err.status["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0",
         "field": "spec.replicas"}]


def test_replicaset():
    rs = {"metadata": {"name": "r", "namespace": "default"},
          "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                   "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    apply_defaults("ReplicaSet", "apps/v1", rs)
    assert msgs("ReplicaSet", rs) == [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]


def test_status_validation():
    old = deployment()
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "readyReplicas": 2, "availableReplicas": 1}
    assert [(c.field, c.message) for c in validate_status("Deployment", "apps/v1", new, old)] == [
        ("status.readyReplicas", "Invalid value: 2: cannot be greater than status.replicas")]


# --- Pod -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ({"containers": []}, [("spec.containers", "Required value")]),
    ({"containers": [{"name": "c", "image": "x"}, {"name": "c", "image": "y"}]},
     [("spec.containers[1].name", 'Duplicate value: "c"')]),
    ({"containers": [{"name": "c"}]}, [("spec.containers[0].image", "Required value")]),
    ({"containers": [{"name": "C_1", "image": "x"}]}, [("spec.containers[0].name", 'Invalid value: "C_1": ' + DNS1123_LABEL)]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 70000}]}]},
     [("spec.containers[0].ports[0].containerPort", "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]},
     [("spec.containers[0].ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')]),
    ({"restartPolicy": "Sometimes"},
     [("spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')]),
    ({"dnsPolicy": "Bogus"},
     [("spec.dnsPolicy", 'Unsupported value: "Bogus": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
                         '"Default", "None"')]),
    ({"containers": [{"name": "c", "image": "x", "imagePullPolicy": "Sometimes"}]},
     [("spec.containers[0].imagePullPolicy",
       'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')]),
    ({"containers": [{"name": "c", "image": "x", "livenessProbe": {}}]},
     [("spec.containers[0].livenessProbe", "Required value: must specify a handler type")]),
    ({"containers": [{"name": "c", "image": "x",
                      "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}}]},
     [("spec.containers[0].readinessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type")]),
    ({"containers": [{"name": "c", "image": "x", "livenessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 2}}]},
     [("spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1")]),
    ({"containers": [{"name": "c", "image": "x", "readinessProbe": {"httpGet": {"port": 0}}}]},
     [("spec.containers[0].readinessProbe.httpGet.port", "Invalid value: 0: must be between 1 and 65535, inclusive")]),
    ({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]},
     [("spec.containers[0].resources.requests", 'Invalid value: "2": must be less than or equal to cpu limit of 1')]),
    ({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"memory": "-1Mi"}}}]},
     # Pod defaulting copies limits into requests, so both report.
     [("spec.containers[0].resources.limits[memory]", 'Invalid value: "-1Mi": must be greater than or equal to 0'),
      ("spec.containers[0].resources.requests[memory]", 'Invalid value: "-1Mi": must be greater than or equal to 0')]),
    ({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"gpu": "1"}}}]},
     [("spec.containers[0].resources.limits[gpu]", 'Invalid value: "gpu": must be a standard resource for containers'),
      ("spec.containers[0].resources.requests[gpu]", 'Invalid value: "gpu": must be a standard resource for containers')]),
    ({"containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]},
     [("spec.containers[0].volumeMounts[0].name", 'Not found: "v"')]),
])
def test_pod_spec_errors(spec, expected):
    assert msgs("Pod", pod(**spec)) == expected


def test_pod_update_allows_image_and_toleration_additions():
    old = pod()
    old["metadata"]["resourceVersion"] = "7"
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "x:2"
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists", "effect": "NoSchedule"})
    new["spec"]["activeDeadlineSeconds"] = 30
    assert msgs("Pod", new, old) == []


def test_pod_update_forbids_other_spec_changes():
    old = pod()
    old["metadata"]["resourceVersion"] = "7"
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    (field, message), = msgs("Pod", new, old)
    assert field == "spec"
    assert message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
        "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n")
    assert "restartPolicy" in message


def test_pod_update_container_count_and_tolerations():
    old = pod()
    old["metadata"]["resourceVersion"] = "7"
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "d", "image": "y"})
    assert msgs("Pod", new, old)[-1] == ("spec.containers", "Forbidden: pod updates may not add or remove containers")
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = new["spec"]["tolerations"][:1]
    assert ("spec.tolerations", "Forbidden: existing toleration can not be modified except its tolerationSeconds") \
        in msgs("Pod", new, old)


# --- Service ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ({"ports": []}, [("spec.ports", "Required value")]),
    ({"ports": [{"port": 0}]}, [("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive"),
                                ("spec.ports[0].targetPort", "Invalid value: 0: must be between 1 and 65535, inclusive")]),
    ({"ports": [{"port": 80}, {"port": 81}]},
     [("spec.ports[0].name", "Required value"), ("spec.ports[1].name", "Required value")]),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}, [("spec.ports[1].name", 'Duplicate value: "a"')]),
    ({"type": "Magic"},
     [("spec.type", 'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"')]),
    ({"ports": [{"port": 80, "nodePort": 30080}]},
     [("spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'")]),
    ({"sessionAffinity": "Sticky"},
     [("spec.sessionAffinity", 'Unsupported value: "Sticky": supported values: "ClientIP", "None"')]),
])
def test_service_errors(spec, expected):
    assert msgs("Service", service(**spec)) == expected


def test_headless_service_needs_no_ports():
    assert msgs("Service", service(ports=[], clusterIP="None")) == []


def test_node_port_range():
    svc = service(type="NodePort", ports=[{"port": 80, "nodePort": 80}])
    assert msgs("Service", svc) == []
    assert [(c.field, c.message) for c in node_port_range_errors(svc)] == [
        ("spec.ports[0].nodePort",
         "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767")]


def test_cluster_ip_immutable():
    old = service(clusterIP="10.96.0.10")
    old["metadata"]["resourceVersion"] = "2"
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    new["spec"]["clusterIPs"] = ["10.96.0.11"]
    assert msgs("Service", new, old) == [
        ("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.0.11"}: may not change once set')]


# --- other kinds -----------------------------------------------------------------------

def test_configmap_and_secret_keys():
    cm = {"metadata": {"name": "c", "namespace": "d"}, "data": {"bad key": "v", "ok.key": "v"}}
    assert msgs("ConfigMap", cm) == [
        ("data[bad key]", 'Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '
                          "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                          "validation is '[-._a-zA-Z0-9]+')")]
    sec = {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"..": "eA=="}}
    assert msgs("Secret", sec) == [
        ("data[..]", "Invalid value: \"..\": must not be '..'"),
        ("data[tls.crt]", "Required value"), ("data[tls.key]", "Required value")]


def test_immutable_configmap_and_secret_type():
    old = {"metadata": {"name": "c", "namespace": "d", "resourceVersion": "1"}, "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert msgs("ConfigMap", new, old) == [("data", "Forbidden: field is immutable when `immutable` is set")]
    old = {"metadata": {"name": "s", "namespace": "d", "resourceVersion": "1"}, "type": "Opaque"}
    new = dict(old, type="kubernetes.io/basic-auth", data={"username": "dQ=="})
    assert msgs("Secret", new, old) == [("type", 'Invalid value: "kubernetes.io/basic-auth": field is immutable')]


def test_lease_endpointslice_node_namespace():
    lease = {"metadata": {"name": "n", "namespace": "kube-node-lease"}, "spec": {"leaseDurationSeconds": 0}}
    assert msgs("Lease", lease) == [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")]
    es = {"metadata": {"name": "s", "namespace": "d"}, "addressType": "IPv4",
          "endpoints": [{"addresses": ["10.0.0.300"]}], "ports": [{"name": "", "protocol": "TCP", "port": 80}]}
    assert msgs("EndpointSlice", es) == [
        ("endpoints[0].addresses[0]", 'Invalid value: "10.0.0.300": must be a valid IPv4 address')]
    node = {"metadata": {"name": "node-1"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}
    assert msgs("Node", node) == [("spec.taints[0].effect", 'Unsupported value: "Sometimes": supported values: '
                                   '"NoSchedule", "PreferNoSchedule", "NoExecute"')]
    ns = {"metadata": {"name": "ok"}}
    apply_defaults("Namespace", "v1", ns)
    assert msgs("Namespace", ns) == []


def test_endpoints_and_events():
    ep = {"metadata": {"name": "web", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80, "protocol": "TCP"}]}]}
    assert msgs("Endpoints", ep) == [("subsets[0].addresses[0].ip",
                                      'Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')]
    ev = {"metadata": {"name": "web.1", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}, "reason": "Started"}
    assert msgs("Event", ev) == [("involvedObject.namespace", 'Invalid value: "other": does not match event.namespace')]
    ev["involvedObject"]["namespace"] = "default"
    assert msgs("Event", ev) == []


# --- generation ------------------------------------------------------------------------

def test_generation_changed():
    old = deployment()
    new = copy.deepcopy(old)
    assert not generation_changed("Deployment", old, new)
    new["metadata"]["annotations"] = {"kubernetes.io/change-cause": "x"}
    assert generation_changed("Deployment", old, new)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    assert generation_changed("Deployment", old, new)
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 3}
    assert not generation_changed("Deployment", old, new)
    rs_old = {"metadata": {}, "spec": {"replicas": 1}}
    rs_new = {"metadata": {"annotations": {"a": "b"}}, "spec": {"replicas": 1}}
    assert not generation_changed("ReplicaSet", rs_old, rs_new)
    assert generation_changed("ReplicaSet", rs_old, {"spec": {"replicas": 2}})
    assert not generation_changed("Pod", {"spec": {"a": 1}}, {"spec": {"a": 2}})


@pytest.mark.parametrize("ip,message", [
    ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("::1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
    ("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("fe80::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("224.0.0.251", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("ff02::fb", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
])
def test_endpoints_refuse_special_addresses(ip, message):
    ep = {"metadata": {"name": "web", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 80, "protocol": "TCP"}]}]}
    assert msgs("Endpoints", ep) == [("subsets[0].addresses[0].ip", f'Invalid value: "{ip}": {message}')]


def test_endpoints_loopback_allowed_for_pod_addresses_and_the_api_server():
    pod_addr = {"ip": "127.0.30.1", "targetRef": {"kind": "Pod", "name": "web-a", "namespace": "default"}}
    ep = {"metadata": {"name": "web", "namespace": "default"},
          "subsets": [{"notReadyAddresses": [pod_addr], "ports": [{"port": 80, "protocol": "TCP"}]}]}
    assert msgs("Endpoints", ep) == []
    api = {"metadata": {"name": "kubernetes", "namespace": "default"},
           "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]}
    assert msgs("Endpoints", api) == []
    api["metadata"]["namespace"] = "other"
    assert msgs("Endpoints", api) == [("subsets[0].addresses[0].ip", 'Invalid value: "127.0.0.1": '
                                       "may not be in the loopback range (127.0.0.0/8, ::1/128)")]


# --- env valueFrom (validateEnvVarValueFrom) --------------------------------------------

@pytest.mark.parametrize("value_from,value,expected", [
    ({"fieldRef": {"fieldPath": "metadata.name"}}, "", []),
    ({"fieldRef": {"fieldPath": "metadata.labels['app']"}}, "", []),
    ({"fieldRef": {"fieldPath": "status.phase"}}, "",
     [("valueFrom.fieldRef.fieldPath", 'Unsupported value: "status.phase": supported values: "metadata.name", '
       '"metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", '
       '"status.hostIPs", "status.podIP", "status.podIPs"')]),
    ({"fieldRef": {"fieldPath": "spec.nope"}}, "",
     [("valueFrom.fieldRef.fieldPath",
       'Invalid value: "spec.nope": error converting fieldPath: field label not supported: spec.nope')]),
    ({"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}, "",
     [("valueFrom.fieldRef.fieldPath",
       'Invalid value: "metadata.name": error converting fieldPath: unsupported pod version: v2')]),
    ({}, "", [("valueFrom", 'Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, '
               "`configMapKeyRef` or `secretKeyRef`")]),
    ({"secretKeyRef": {"name": "s", "key": "k"}}, "v",
     [("valueFrom", 'Invalid value: "": may not be specified when `value` is not empty')]),
    ({"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}, "",
     [("valueFrom", 'Invalid value: "": may not have more than one field specified at a time')]),
    ({"configMapKeyRef": {"name": "c"}}, "", [("valueFrom.configMapKeyRef.key", "Required value")]),
    ({"resourceFieldRef": {"resource": "limits.gpu"}}, "",
     [("valueFrom.resourceFieldRef.resource", 'Unsupported value: "limits.gpu": supported values: "limits.cpu", '
       '"limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", '
       '"requests.memory"')]),
])
def test_env_value_from_is_validated_as_upstream(value_from, value, expected):
    env = {"name": "A", "valueFrom": value_from}
    if value:
        env["value"] = value
    p = pod(containers=[{"name": "c", "image": "x:1", "env": [env]}])
    prefix = "spec.containers[0].env[0]."
    assert msgs("Pod", p) == [(prefix + f, m) for f, m in expected]
