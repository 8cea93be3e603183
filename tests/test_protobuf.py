"""Protobuf wire format: decode what the real kubectl sends, encode/decode round trips.

The kubectl tests run a tiny capture server on 127.0.0.1 that answers legacy discovery and
records POST bodies.  kubectl 1.33 sends protobuf and kubectl 1.28 sends JSON for the same
command, so ``decode(protobuf body) == json body`` proves nothing is lost on the way.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import pathlib
import struct
from typing import Any

import pytest
from aiohttp import web

from kubelite.api import errors, protobuf, protoschema
from kubelite.api.protobuf import MAGIC, MEDIA_TYPE, decode, encode, unknown_fields

SAMPLES = pathlib.Path("/work/shared/oracle/api-samples")
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"


# --------------------------------------------------------------------------- capture server

def _resources(group_version: str, *entries: tuple[str, str, bool, list[str]]) -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [{"name": n, "singularName": "", "namespaced": ns, "kind": k, "verbs": v}
                          for n, k, ns, v in entries]}


CRUD = ["create", "delete", "get", "list", "patch", "update", "watch"]
EXTRA_GROUPS = {  # served beside the recorded v1 and apps/v1 lists
    "batch": ["v1"], "autoscaling": ["v2", "v1"],
    "authorization.k8s.io": ["v1"], "authentication.k8s.io": ["v1"],
}
EXTRA_RESOURCES = {
    "/apis/batch/v1": _resources("batch/v1", ("jobs", "Job", True, CRUD), ("cronjobs", "CronJob", True, CRUD)),
    "/apis/autoscaling/v1": _resources("autoscaling/v1", ("horizontalpodautoscalers", "HorizontalPodAutoscaler",
                                                          True, CRUD)),
    "/apis/autoscaling/v2": _resources("autoscaling/v2", ("horizontalpodautoscalers", "HorizontalPodAutoscaler",
                                                          True, CRUD)),
    "/apis/authorization.k8s.io/v1": _resources("authorization.k8s.io/v1", (
        "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ["create"])),
    "/apis/authentication.k8s.io/v1": _resources("authentication.k8s.io/v1", (
        "selfsubjectreviews", "SelfSubjectReview", False, ["create"])),
}


class Capture:
    """A stand-in API server: legacy discovery for a few groups, POST bodies recorded."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []
        self.answer_protobuf = False  # reply with encode() when the client accepts it
        self.protobuf_replies = 0
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        self.port = 0

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.rstrip("/")
        if request.method == "GET":
            if path == "/api":
                return _json_file("discovery-api.json")
            if path == "/apis":
                body = json.loads((SAMPLES / "discovery-apis.json").read_text())
                groups = [g for g in body["groups"] if g["name"] == "apps"]
                for name, versions in EXTRA_GROUPS.items():
                    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
                    groups.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
                return web.json_response({**body, "groups": groups})
            if path == "/api/v1":
                return _json_file("discovery-api-v1.json")
            if path == "/apis/apps/v1":
                return _json_file("discovery-apis-apps-v1.json")
            if path in EXTRA_RESOURCES:
                return web.json_response(EXTRA_RESOURCES[path])
            return web.json_response(errors.no_such_path().status, status=404)
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        self.posts.append((request.path, ctype, body))
        obj = decode(body) if ctype.startswith(MEDIA_TYPE) else json.loads(body)
        if self.answer_protobuf and MEDIA_TYPE in request.headers.get("Accept", ""):
            self.protobuf_replies += 1
            return web.Response(body=encode(_created(obj)), status=201, headers={"Content-Type": MEDIA_TYPE})
        return web.json_response(_created(obj), status=201)

    async def stop(self) -> None:
        await self.runner.cleanup()


def _created(obj: dict[str, Any]) -> dict[str, Any]:
    """What a server would answer: the object with server-set fields and a status."""
    obj = json.loads(json.dumps(obj))
    obj.setdefault("metadata", {}).update(uid="5a1e0000-0000-0000-0000-000000000001", resourceVersion="1",
                                          creationTimestamp="2024-01-01T00:00:00Z")
    kind = obj.get("kind")
    if kind == "TokenRequest":
        obj["status"] = {"token": "tok", "expirationTimestamp": "2024-01-01T01:00:00Z"}
    elif kind == "SelfSubjectAccessReview":
        obj["status"] = {"allowed": True}
    elif kind == "SelfSubjectReview":
        obj["status"] = {"userInfo": {"username": "admin", "groups": ["system:masters"]}}
    return obj


def _json_file(name: str) -> web.Response:
    return web.Response(body=(SAMPLES / name).read_bytes(), content_type="application/json")


@pytest.fixture
async def capture(tmp_path: pathlib.Path):
    srv = Capture()
    await srv.start()
    yield srv
    await srv.stop()


async def run_kubectl(srv: Capture, tmp: pathlib.Path, minor: int, *args: str) -> tuple[int, str, str]:
    """Run kubectl 1.<minor> against the capture server with its own cache dir."""
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{srv.port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
    }))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "KUBECACHEDIR": str(tmp / f"cache{minor}")}
    proc = await asyncio.create_subprocess_exec(
        KUBECTL.format(minor), "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


COMMANDS = [
    ("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", "--port=80"),
    ("create", "deployment", "zero", "--image=nginx:1.25", "--replicas=0"),
    ("create", "namespace", "x"),
    ("create", "configmap", "c", "--from-literal=a=b", "--from-literal=empty="),
    ("create", "service", "clusterip", "s", "--tcp=80:8080"),
    ("create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"),
    ("create", "secret", "generic", "sec", "--from-literal=password=hunter2", "--type=Opaque"),
    ("create", "serviceaccount", "robot"),
    ("create", "job", "j", "--image=busybox", "--", "echo", "hi"),
    ("create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *", "--restart=OnFailure"),
    ("create", "token", "robot", "--duration=1h", "--audience=api"),
    ("auth", "can-i", "create", "pods"),
    ("auth", "whoami"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[1:3]) for c in COMMANDS])
async def test_kubectl_133_protobuf_body_decodes_to_kubectl_128_json(capture, tmp_path, command):
    rc, out, err = await run_kubectl(capture, tmp_path, 33, *command)
    assert rc == 0, err
    rc, out, err = await run_kubectl(capture, tmp_path, 28, *command)
    assert rc == 0, err
    (path33, ctype33, body33), (path28, ctype28, body28) = capture.posts
    assert path33 == path28
    assert ctype33 == MEDIA_TYPE
    assert ctype28 == "application/json"
    assert body33.startswith(MAGIC)
    assert decode(body33) == json.loads(body28)


async def test_kubectl_create_deployment_gets_a_sane_reply(capture, tmp_path):
    rc, out, err = await run_kubectl(capture, tmp_path, 33, "create", "deployment", "web",
                                     "--image=nginx:1.25", "--replicas=3", "--port=80", "-o", "json")
    assert rc == 0, err
    created = json.loads(out)
    assert created["metadata"]["name"] == "web"
    assert created["spec"]["replicas"] == 3
    assert created["metadata"]["uid"] == "5a1e0000-0000-0000-0000-000000000001"
    assert created["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}], "resources": {}}]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[1:3]) for c in COMMANDS])
async def test_kubectl_133_reads_our_protobuf_replies(capture, tmp_path, command):
    args = _with_json_output(command)
    rc, out_json, err = await run_kubectl(capture, tmp_path, 33, *args)
    assert rc == 0, err
    capture.answer_protobuf = True
    rc, out_pb, err = await run_kubectl(capture, tmp_path, 33, *args)
    assert rc == 0, err
    assert capture.protobuf_replies == 1
    assert out_pb == out_json


def _with_json_output(command: tuple[str, ...]) -> tuple[str, ...]:
    """The command with ``-o json`` (before any ``--``) where it prints the created object."""
    if command[0] == "auth" or command[1] == "token":
        return command
    if "--" in command:
        i = command.index("--")
        return (*command[:i], "-o", "json", *command[i:])
    return (*command, "-o", "json")


async def test_kubectl_132_sends_protobuf_too(capture, tmp_path):
    rc, out, err = await run_kubectl(capture, tmp_path, 32, "create", "namespace", "x")
    assert rc == 0, err
    (_, ctype, body), = capture.posts
    assert ctype == MEDIA_TYPE
    assert decode(body) == {"kind": "Namespace", "apiVersion": "v1",
                            "metadata": {"name": "x", "creationTimestamp": None},
                            "spec": {}, "status": {}}


# --------------------------------------------------------------------------- round trips

POD = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {
        "name": "p", "namespace": "default", "uid": "u-1", "resourceVersion": "7", "generation": 3,
        "creationTimestamp": "2024-01-01T00:00:00Z", "deletionTimestamp": "2024-01-02T03:04:05Z",
        "deletionGracePeriodSeconds": 0,
        "labels": {"app": "web", "empty": ""}, "annotations": {"a": "b"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-2",
                             "controller": True, "blockOwnerDeletion": False}],
        "finalizers": ["x/y"],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                           "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
    },
    "spec": {
        "volumes": [
            {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "a", "path": "a.txt"}],
                                           "defaultMode": 420, "optional": False}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "host", "hostPath": {"path": "/tmp", "type": "Directory"}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0}},
            {"name": "proj", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"apiVersion": "v1",
                                                                        "fieldPath": "metadata.namespace"}}]}}]}},
        ],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"],
                            "restartPolicy": "Always", "resources": {}}],
        "containers": [{
            "name": "c", "image": "nginx:1.25", "args": ["-g", "daemon off;"], "workingDir": "/w",
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                      {"containerPort": 53, "protocol": "UDP", "hostPort": 5353, "hostIP": "127.0.0.1"}],
            "env": [{"name": "A", "value": "1"}, {"name": "EMPTY"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"containerName": "c", "resource": "limits.cpu",
                                                                       "divisor": "1m"}}}],
            "envFrom": [{"prefix": "P_", "configMapRef": {"name": "c"}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "0"}},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                                          "httpHeaders": [{"name": "X", "value": "y"}]},
                              "initialDelaySeconds": 3, "periodSeconds": 10, "timeoutSeconds": 1,
                              "successThreshold": 1, "failureThreshold": 3, "terminationGracePeriodSeconds": 0},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
            "startupProbe": {"exec": {"command": ["cat", "/ready"]}, "failureThreshold": 30},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
            "stdin": True, "tty": True,
        }],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 600,
        "dnsPolicy": "ClusterFirst", "nodeSelector": {"disk": "ssd"},
        "serviceAccountName": "default", "automountServiceAccountToken": False,
        "nodeName": "node-1", "hostNetwork": True,
        "securityContext": {"fsGroup": 2000, "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "imagePullSecrets": [{"name": "regcred"}],
        "hostname": "h", "subdomain": "sd",
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                    "topologyKey": "kubernetes.io/hostname"}}]},
        },
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}, {"operator": "Exists"}],
        "hostAliases": [{"ip": "127.0.0.2", "hostnames": ["foo"]}],
        "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                       "labelSelector": {"matchExpressions": [
                                           {"key": "app", "operator": "Exists"}]}}],
    },
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                        "lastTransitionTime": "2024-01-01T00:00:05Z"}],
        "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
        "startTime": "2024-01-01T00:00:01Z",
        "containerStatuses": [{
            "name": "c", "state": {"running": {"startedAt": "2024-01-01T00:00:02Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": None,
                                         "finishedAt": "2024-01-01T00:00:01Z", "signal": -9}},
            "ready": True, "restartCount": 1, "image": "nginx:1.25", "imageID": "sha256:abc",
            "containerID": "process://1", "started": True,
        }],
        "qosClass": "Burstable",
    },
}

DEPLOYMENT = {
    "kind": "Deployment", "apiVersion": "apps/v1",
    "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"},
                 "annotations": {"deployment.kubernetes.io/revision": "1"}},
    "spec": {
        "replicas": 0, "paused": True, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "resources": {}}]}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
        "minReadySeconds": 5,
    },
    "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
               "availableReplicas": 3, "conditions": [
                   {"type": "Available", "status": "True", "lastUpdateTime": "2024-01-01T00:00:00Z",
                    "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability."}]},
}

OTHERS = [
    {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s", "creationTimestamp": None},
     "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
              "selector": {"app": "s"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "type": "NodePort",
              "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
              "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
     "status": {"loadBalancer": {}}},
    {"kind": "Endpoints", "apiVersion": "v1", "metadata": {"name": "s", "creationTimestamp": None},
     "subsets": [{"addresses": [{"ip": "10.1.0.5", "nodeName": "n1",
                                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u"}}],
                  "notReadyAddresses": [{"ip": "10.1.0.6"}],
                  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]},
    {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "creationTimestamp": None},
     "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"], "unschedulable": True,
              "taints": [{"key": "k", "value": "v", "effect": "NoSchedule", "timeAdded": "2024-01-01T00:00:00Z"}]},
     "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "allocatable": {"cpu": "4"},
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                                "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "KubeletReady",
                                "message": "ok"}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6",
                             "osImage": "linux", "containerRuntimeVersion": "process://1",
                             "kubeletVersion": "v1.28.7", "kubeProxyVersion": "v1.28.7",
                             "operatingSystem": "linux", "architecture": "amd64"}}},
    {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "creationTimestamp": None},
     "immutable": False, "data": {"k": base64.b64encode(b"\x00\xffbinary").decode(), "e": ""}, "type": "Opaque"},
    {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "creationTimestamp": None},
     "data": {"a": "b"}, "binaryData": {"bin": "AAE="}},
    {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "sa", "creationTimestamp": None},
     "secrets": [{"name": "t"}], "automountServiceAccountToken": False},
    {"kind": "Event", "apiVersion": "v1",
     "metadata": {"name": "p.1", "namespace": "default", "creationTimestamp": None},
     "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u", "apiVersion": "v1",
                        "resourceVersion": "3", "fieldPath": "spec.containers{c}"},
     "reason": "Pulled", "message": "ok", "source": {"component": "kubelet", "host": "n1"},
     "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:09Z", "count": 2,
     "type": "Normal", "eventTime": None, "reportingComponent": "", "reportingInstance": ""},
    {"kind": "Event", "apiVersion": "events.k8s.io/v1",
     "metadata": {"name": "e", "creationTimestamp": None}, "eventTime": "2024-01-01T00:00:00.123456Z",
     "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000001Z"},
     "reportingController": "c", "reportingInstance": "i", "action": "Pull", "reason": "Pulled",
     "regarding": {"kind": "Pod", "name": "p"}, "note": "n", "type": "Normal",
     # Go writes these non-omitempty fields even when unset
     "deprecatedSource": {}, "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None},
    {"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "p", "creationTimestamp": None},
     "target": {"kind": "Node", "name": "n1"}},
    {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "x", "creationTimestamp": None},
     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
     "metadata": {"name": "s-abc", "creationTimestamp": None, "labels": {"kubernetes.io/service-name": "s"}},
     "addressType": "IPv4",
     "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": True, "serving": True, "terminating": False},
                    "targetRef": {"kind": "Pod", "name": "p"}, "nodeName": "n1", "zone": "a"}],
     "ports": [{"name": "", "protocol": "TCP", "port": 8080}]},
    {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
     "metadata": {"name": "n1", "namespace": "kube-node-lease", "creationTimestamp": None},
     "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-01-01T00:00:00.500000Z",
              "leaseTransitions": 0}},
    {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web", "creationTimestamp": None},
     "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app=web"}},
    {"kind": "Eviction", "apiVersion": "policy/v1", "metadata": {"name": "p", "creationTimestamp": None},
     "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Background",
                       "preconditions": {"uid": "u"}}},
    {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 30, "orphanDependents": False,
     "dryRun": ["All"]},
    {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
     "message": 'pods "x" not found', "reason": "NotFound",
     "details": {"name": "x", "kind": "pods"}, "code": 404},
    {"kind": "ReplicaSet", "apiVersion": "apps/v1",
     "metadata": {"name": "web-1", "creationTimestamp": None},
     "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}}},
     "status": {"replicas": 0, "conditions": [{"type": "ReplicaFailure", "status": "True",
                                                "lastTransitionTime": None}]}},
    {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
     "metadata": {"creationTimestamp": None},
     "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
     "status": {"allowed": False}},
    {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
     "metadata": {"creationTimestamp": None},
     "status": {"userInfo": {"username": "admin", "groups": ["system:masters"],
                             "extra": {"k": ["a", "b"]}}}},
    {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "9"},
     "items": [DEPLOYMENT]},
]


def test_pod_round_trips_without_loss():
    assert decode(encode(POD)) == POD


def test_deployment_round_trip_keeps_pointer_zeroes():
    got = decode(encode(DEPLOYMENT))
    assert got["spec"]["replicas"] == 0
    assert got["spec"]["paused"] is True
    # a list item carries no apiVersion/kind of its own in either encoding
    assert got == DEPLOYMENT


@pytest.mark.parametrize("obj", OTHERS, ids=[f'{o["apiVersion"]}/{o["kind"]}' for o in OTHERS])
def test_round_trip(obj):
    got = decode(encode(obj))
    if obj["kind"] == "DeploymentList":
        obj = {**obj, "items": [{k: v for k, v in DEPLOYMENT.items() if k not in ("apiVersion", "kind")}]}
    assert got == obj


def test_replicationcontroller_round_trip_keeps_label_map_selector_and_status_replicas():
    rc = {"kind": "ReplicationController", "apiVersion": "v1",
          "metadata": {"name": "web", "namespace": "default", "creationTimestamp": None},
          "spec": {"replicas": 0, "selector": {"app": "web"},
                   "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]}}},
          "status": {"replicas": 0}}
    assert decode(encode(rc)) == rc
    # status.replicas has no omitempty in Go: an empty status still carries it.
    assert decode(encode({**rc, "status": {}}))["status"] == {"replicas": 0}


def test_non_pointer_zero_values_are_dropped_and_pointer_zeroes_kept():
    # Write a Deployment as Go does: every non-pointer scalar written, even when zero.
    container = _s(1, "c") + _s(2, "") + _vi(16, 0)
    spec = (_ld(3, _ld(1, _s(1, "web")) + _ld(2, _ld(2, container)))
            + _vi(1, 0) + _vi(5, 0) + _vi(7, 0) + _ld(4, b""))
    raw = _ld(1, _s(1, "web") + _s(2, "") + _vi(7, 0) + _ld(8, b"")) + _ld(2, spec) + _ld(3, b"")
    got = decode(_envelope("apps/v1", "Deployment", raw))
    assert got == {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": None},
        "spec": {"replicas": 0, "selector": None,
                 "template": {"metadata": {"name": "web", "creationTimestamp": None},
                              "spec": {"containers": [{"name": "c", "resources": {}}]}},
                 "strategy": {}},
        "status": {},
    }


def test_time_types_and_int_or_string():
    obj = decode(encode({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                         "metadata": {"creationTimestamp": "2024-01-01T01:02:03+01:00"},
                         "spec": {"acquireTime": "2024-01-01T00:00:00.1234567Z"}}))
    assert obj["metadata"]["creationTimestamp"] == "2024-01-01T00:02:03Z"
    assert obj["spec"]["acquireTime"] == "2024-01-01T00:00:00.123456Z"
    svc = decode(encode({"kind": "Service", "apiVersion": "v1",
                         "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 0}]}}))
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http", 0]


def test_negative_ints_use_ten_byte_varints():
    body = encode({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": -5}})
    assert decode(body)["spec"]["priority"] == -5
    assert b"\xfb\xff\xff\xff\xff\xff\xff\xff\xff\x01" in body


def test_secret_bytes_are_base64():
    raw = _ld(2, _s(1, "k") + _ld(2, b"\x00\x01\xff"))
    got = decode(_envelope("v1", "Secret", raw))
    assert got["data"] == {"k": base64.b64encode(b"\x00\x01\xff").decode()}


def test_unknown_wire_fields_are_skipped():
    raw = _ld(1, _s(1, "x") + _vi(999, 5)) + _ld(4000, b"zz") + _fixed64(4001) + _fixed32(4002)
    assert decode(_envelope("v1", "Namespace", raw))["metadata"]["name"] == "x"


def test_packed_repeated_numbers_are_accepted():
    # PodSpec.securityContext (14) -> PodSecurityContext.supplementalGroups (4), packed
    raw = _ld(2, _ld(14, _ld(4, b"\x01\x02\x83\x01") + _vi(4, 7)))
    got = decode(_envelope("v1", "Pod", raw))
    assert got["spec"]["securityContext"]["supplementalGroups"] == [1, 2, 131, 7]


def test_unknown_kind_is_415_and_garbage_is_400():
    with pytest.raises(errors.StatusError) as e:
        decode(_envelope("example.com/v1", "Widget", b""))
    assert e.value.code == 415
    garbage = [b"", b"k8s", b"nope", MAGIC + b"\xff", MAGIC + b"\x0a\x05ab",
               MAGIC + b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
               MAGIC + b"\x0b\x00", _envelope("v1", "Pod", b"\x12\x05\x0a"),
               _envelope("v1", "Pod", _ld(1, _vi(8, 2**62))),  # time far out of range
               _envelope("v1", "Pod", _vi(1, 3)),  # metadata sent as a varint
               _envelope("v1", "Pod", _ld(2, _s(1, "x"))),  # PodSpec.volumes item not a message
               _envelope("v1", "List", _ld(2, _ld(1, b"{not json"))),  # RawExtension JSON
               ]
    for body in garbage:
        with pytest.raises(errors.StatusError) as e:
            decode(body)
        assert e.value.code == 400, body
        assert e.value.reason == "BadRequest"
        assert "protobuf" in e.value.message


def test_fuzzed_bodies_never_crash():
    import random
    rnd = random.Random(7)
    good = encode(POD)
    for _ in range(3000):
        b = bytearray(good)
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(b))
            b[i] = rnd.randrange(256)
        cut = rnd.randrange(len(b) + 1)
        for body in (bytes(b), bytes(b[:cut])):
            try:
                decode(body)
            except errors.StatusError as e:
                assert e.code in (400, 415)


def test_deep_nesting_is_refused():
    raw = b""
    for _ in range(200):  # List.items is a RawExtension holding another List
        raw = _ld(2, _ld(1, _envelope("v1", "List", raw)))
    with pytest.raises(errors.StatusError) as e:
        decode(_envelope("v1", "List", raw))
    assert e.value.code == 400


def test_encode_refuses_what_the_schema_cannot_hold():
    with pytest.raises(protobuf.Unsupported, match="spec.foo"):
        encode({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"foo": 1}})
    with pytest.raises(protobuf.Unsupported):
        encode({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": []})
    with pytest.raises(protobuf.Unsupported):
        encode({"kind": "Widget", "apiVersion": "example.com/v1"})
    with pytest.raises(protobuf.Unsupported):
        encode({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": "high"}})
    with pytest.raises(protobuf.Unsupported, match="int32"):
        encode({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": 2**31}})
    with pytest.raises(protobuf.Unsupported):
        encode({"kind": "List", "apiVersion": "v1", "items": [{"x": object()}]})


def test_unknown_fields_lists_dotted_paths():
    obj = {"kind": "Deployment", "apiVersion": "apps/v1", "foo": 1,
           "metadata": {"name": "x", "labels": {"any": "thing"}, "bogus": True},
           "spec": {"replicas": 1, "template": {"spec": {
               "containers": [{"name": "a"}, {"name": "b", "restartPolicyX": "Always",
                                              "resources": {"limits": {"cpu": "1"}}}],
               "volumes": [{"name": "v", "configMap": {"name": "c"}, "nope": 1}]}}}}
    assert unknown_fields(obj) == ["foo", "metadata.bogus", "spec.template.spec.containers[1].restartPolicyX",
                                   "spec.template.spec.volumes[0].nope"]
    assert unknown_fields(POD) == []
    assert unknown_fields(DEPLOYMENT) == []
    assert unknown_fields({"kind": "Widget", "apiVersion": "example.com/v1", "x": 1}) == []
    assert unknown_fields({"kind": "ConfigMap", "apiVersion": "v1", "data": {"free": "form"}}) == []


def test_schema_is_consistent():
    for name in protoschema.MESSAGES:
        msg = protoschema.message(name)
        assert msg is not None
        numbers = [f.number for f in msg.fields]
        assert len(numbers) == len(set(numbers)), name
        for f in msg.fields:
            assert f.type in protoschema.SCALARS or f.type in protoschema.MESSAGES \
                or f.type in protoschema.SPECIAL, (name, f)
    for kind in ["Pod", "Service", "Endpoints", "Namespace", "Node", "ConfigMap", "Secret", "ServiceAccount",
                 "Event", "Binding"]:
        assert protoschema.kind_message("v1", kind)
    assert protoschema.kind_message("apps/v1", "Deployment") == "apps.v1.Deployment"
    assert protoschema.kind_message("policy/v1", "DeleteOptions") == "meta.v1.DeleteOptions"


# --------------------------------------------------------------------------- wire helpers

def _uv(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(num: int, data: bytes) -> bytes:
    return _uv(num << 3 | 2) + _uv(len(data)) + data


def _s(num: int, text: str) -> bytes:
    return _ld(num, text.encode())


def _vi(num: int, value: int) -> bytes:
    return _uv(num << 3) + _uv(value)


def _fixed64(num: int) -> bytes:
    return _uv(num << 3 | 1) + struct.pack("<q", 1)


def _fixed32(num: int) -> bytes:
    return _uv(num << 3 | 5) + struct.pack("<i", 1)


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + _ld(1, _s(1, api_version) + _s(2, kind)) + _ld(2, raw)
