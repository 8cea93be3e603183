"""Compact protobuf schema of the Kubernetes kinds kubelite decodes and encodes.

How this data was derived: for each package listed in ``KINDS`` (k8s.io/api core, apps,
batch, discovery, coordination, events, networking (Ingress), autoscaling v1/v2, policy, authentication,
authorization, rbac — all at v0.33.13 — and apimachinery ``pkg/apis/meta/v1``) we read the
upstream ``generated.proto`` for message names, field numbers and proto types, and the
Go ``types.go`` struct tags of the same fields for what proto does not say: the JSON
name, ``omitempty``, whether the Go field is a pointer, and ``json:",inline"`` embeds.
Only messages reachable from a kind are kept.  Nothing upstream is copied: these are the
facts (names, numbers, types) rewritten in our own notation, below.

Notation — one string per message, space-separated fields in Go struct (= JSON) order::

    jsonName=NUMBER[FLAGS]:TYPE

* TYPE is a scalar code (``s`` string, ``i32``, ``i64``, ``b`` bool, ``f64`` double,
  ``f32`` float, ``y`` bytes), or a message: bare names live in the same package, dotted
  ones are ``<package>.<Message>``.  ``[]T`` is a repeated field, ``{}T`` a
  ``map<string, T>``.
* FLAGS: ``*`` the Go field is a pointer (its presence matters: ``replicas: 0`` is kept);
  ``!`` no ``omitempty`` (Go's JSON always writes it, ``null`` when nil).
* ``...`` as the name marks a Go embedded struct whose fields JSON inlines into the parent
  (``Volume`` → ``VolumeSource``, ``Probe`` → ``ProbeHandler``).
* A spec starting with ``@`` is a Go named slice (``ExtraValue []string``) that protobuf
  wraps as ``{items}`` but JSON writes as the bare list.

The special types of ``SPECIAL`` (Time, Quantity, IntOrString …) have hand-written codecs
in ``protobuf.py`` because their JSON form is not their message shape.
"""
from __future__ import annotations

from functools import cache
from typing import NamedTuple

SCALARS = frozenset({"s", "i32", "i64", "b", "f64", "f32", "y"})

# Messages whose JSON form is a scalar or raw JSON; coded by hand in protobuf.py.
SPECIAL = frozenset({
    "meta.v1.Time", "meta.v1.MicroTime", "meta.v1.Duration", "meta.v1.FieldsV1",
    "intstr.IntOrString", "resource.Quantity", "runtime.RawExtension",
})


class Field(NamedTuple):
    """One message field, with the Go facts needed to reproduce its JSON form."""

    name: str        # JSON name; "..." for an inlined embedded struct
    number: int
    type: str        # scalar code or fully qualified message name
    repeated: bool
    map: bool        # map<string, type>
    pointer: bool    # Go pointer: present-but-zero is meaningful
    always: bool     # no omitempty: JSON writes the zero value (null for nil)

    @property
    def inline(self) -> bool:
        """Whether JSON flattens this embedded struct into its parent."""
        return self.name == "..."


class Message(NamedTuple):
    """A parsed message schema."""

    name: str
    fields: tuple[Field, ...]          # JSON order
    by_number: dict[int, Field]
    wrapper: bool                      # Go named slice, protobuf {items}
    is_kind: bool                      # embeds TypeMeta: apiVersion/kind allowed in JSON


def _qualify(ref: str, package: str) -> str:
    if ref in SCALARS or "." in ref:
        return ref
    return f"{package}.{ref}"


@cache
def message(name: str) -> Message | None:
    """The schema of a fully qualified message (``apps.v1.Deployment``), or None."""
    spec = MESSAGES.get(name)
    if spec is None:
        return None
    package = name.rsplit(".", 1)[0]
    wrapper = spec.startswith("@")
    fields = []
    for token in spec.lstrip("@").split():
        head, _, typ = token.partition(":")
        jname, _, numflags = head.partition("=")
        digits = numflags.rstrip("*!")
        flags = numflags[len(digits):]
        repeated = typ.startswith("[]")
        is_map = typ.startswith("{}")
        base = typ[2:] if repeated or is_map else typ
        fields.append(Field(jname, int(digits), _qualify(base, package), repeated, is_map,
                            "*" in flags, "!" in flags))
    return Message(name, tuple(fields), {f.number: f for f in fields}, wrapper, name in _KIND_MESSAGES)


def kind_message(api_version: str, kind: str) -> str | None:
    """The message name for an apiVersion/kind; meta/v1 kinds match any apiVersion."""
    return KINDS.get((api_version, kind)) or KINDS.get(("*", kind))


MESSAGES: dict[str, str] = {
    "admissionregistration.v1.AuditAnnotation": "key=1!:s valueExpression=2!:s",
    "admissionregistration.v1.ExpressionWarning": "fieldRef=2!:s warning=3!:s",
    "admissionregistration.v1.MatchResources": (
        "namespaceSelector=1*:meta.v1.LabelSelector objectSelector=2*:meta.v1.LabelSelector "
        "resourceRules=3:[]NamedRuleWithOperations excludeResourceRules=4:[]NamedRuleWithOperations matchPolicy=7*:s"
    ),
    "admissionregistration.v1.NamedRuleWithOperations": "resourceNames=1:[]s ...=2:RuleWithOperations",
    "admissionregistration.v1.ParamKind": "apiVersion=1:s kind=2:s",
    "admissionregistration.v1.ParamRef": (
        "name=1:s namespace=2:s selector=3*:meta.v1.LabelSelector parameterNotFoundAction=4*:s"
    ),
    "admissionregistration.v1.TypeChecking": "expressionWarnings=1:[]ExpressionWarning",
    "admissionregistration.v1.ValidatingAdmissionPolicy": (
        "metadata=1:meta.v1.ObjectMeta spec=2:ValidatingAdmissionPolicySpec status=3:ValidatingAdmissionPolicyStatus"
    ),
    "admissionregistration.v1.ValidatingAdmissionPolicyBinding": (
        "metadata=1:meta.v1.ObjectMeta spec=2:ValidatingAdmissionPolicyBindingSpec"
    ),
    "admissionregistration.v1.ValidatingAdmissionPolicyBindingList": (
        "metadata=1:meta.v1.ListMeta items=2!:[]ValidatingAdmissionPolicyBinding"
    ),
    "admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec": (
        "policyName=1:s paramRef=2*:ParamRef matchResources=3*:MatchResources validationActions=4:[]s"
    ),
    "admissionregistration.v1.ValidatingAdmissionPolicyList": (
        "metadata=1:meta.v1.ListMeta items=2!:[]ValidatingAdmissionPolicy"
    ),
    "admissionregistration.v1.ValidatingAdmissionPolicySpec": (
        "paramKind=1*:ParamKind matchConstraints=2*:MatchResources validations=3:[]Validation failurePolicy=4*:s "
        "auditAnnotations=5:[]AuditAnnotation matchConditions=6:[]MatchCondition variables=7:[]Variable"
    ),
    "admissionregistration.v1.ValidatingAdmissionPolicyStatus": (
        "observedGeneration=1:i64 typeChecking=2*:TypeChecking conditions=3:[]meta.v1.Condition"
    ),
    "admissionregistration.v1.Validation": "expression=1!:s message=2:s reason=3*:s messageExpression=4:s",
    "admissionregistration.v1.Variable": "name=1!:s expression=2!:s",
    "admissionregistration.v1.MatchCondition": "name=1!:s expression=2!:s",
    "admissionregistration.v1.MutatingWebhook": (
        "name=1!:s clientConfig=2!:WebhookClientConfig rules=3:[]RuleWithOperations failurePolicy=4*:s "
        "matchPolicy=9*:s namespaceSelector=5*:meta.v1.LabelSelector objectSelector=11*:meta.v1.LabelSelector "
        "sideEffects=6*!:s timeoutSeconds=7*:i32 admissionReviewVersions=8!:[]s reinvocationPolicy=10*:s "
        "matchConditions=12:[]MatchCondition"
    ),
    "admissionregistration.v1.MutatingWebhookConfiguration": "metadata=1:meta.v1.ObjectMeta webhooks=2:[]MutatingWebhook",
    "admissionregistration.v1.MutatingWebhookConfigurationList": (
        "metadata=1:meta.v1.ListMeta items=2!:[]MutatingWebhookConfiguration"
    ),
    "admissionregistration.v1.Rule": "apiGroups=1:[]s apiVersions=2:[]s resources=3:[]s scope=4*:s",
    "admissionregistration.v1.RuleWithOperations": "operations=1:[]s ...=2:Rule",
    "admissionregistration.v1.ServiceReference": "namespace=1!:s name=2!:s path=3*:s port=4*:i32",
    "admissionregistration.v1.ValidatingWebhook": (
        "name=1!:s clientConfig=2!:WebhookClientConfig rules=3:[]RuleWithOperations failurePolicy=4*:s "
        "matchPolicy=9*:s namespaceSelector=5*:meta.v1.LabelSelector objectSelector=10*:meta.v1.LabelSelector "
        "sideEffects=6*!:s timeoutSeconds=7*:i32 admissionReviewVersions=8!:[]s matchConditions=11:[]MatchCondition"
    ),
    "admissionregistration.v1.ValidatingWebhookConfiguration": (
        "metadata=1:meta.v1.ObjectMeta webhooks=2:[]ValidatingWebhook"
    ),
    "admissionregistration.v1.ValidatingWebhookConfigurationList": (
        "metadata=1:meta.v1.ListMeta items=2!:[]ValidatingWebhookConfiguration"
    ),
    "admissionregistration.v1.WebhookClientConfig": "url=3*:s service=1*:ServiceReference caBundle=2:y",
    # k8s.io/metrics pkg/apis/metrics/v1beta1 (metrics-server's API)
    "metrics.v1beta1.ContainerMetrics": "name=1!:s usage=2!:{}resource.Quantity",
    "metrics.v1beta1.NodeMetrics": (
        "metadata=1:meta.v1.ObjectMeta timestamp=2!:meta.v1.Time window=3!:meta.v1.Duration "
        "usage=4!:{}resource.Quantity"
    ),
    "metrics.v1beta1.NodeMetricsList": "metadata=1:meta.v1.ListMeta items=2!:[]NodeMetrics",
    "metrics.v1beta1.PodMetrics": (
        "metadata=1:meta.v1.ObjectMeta timestamp=2!:meta.v1.Time window=3!:meta.v1.Duration "
        "containers=4!:[]ContainerMetrics"
    ),
    "metrics.v1beta1.PodMetricsList": "metadata=1:meta.v1.ListMeta items=2!:[]PodMetrics",
    "apps.v1.ControllerRevision": "metadata=1:meta.v1.ObjectMeta data=2:runtime.RawExtension revision=3!:i64",
    "apps.v1.ControllerRevisionList": "metadata=1:meta.v1.ListMeta items=2!:[]ControllerRevision",
    "apps.v1.DaemonSet": "metadata=1:meta.v1.ObjectMeta spec=2:DaemonSetSpec status=3:DaemonSetStatus",
    "apps.v1.DaemonSetCondition": "type=1!:s status=2!:s lastTransitionTime=3:meta.v1.Time reason=4:s message=5:s",
    "apps.v1.DaemonSetList": "metadata=1:meta.v1.ListMeta items=2!:[]DaemonSet",
    "apps.v1.DaemonSetSpec": (
        "selector=1*!:meta.v1.LabelSelector template=2!:core.v1.PodTemplateSpec "
        "updateStrategy=3:DaemonSetUpdateStrategy minReadySeconds=4:i32 revisionHistoryLimit=6*:i32"
    ),
    "apps.v1.DaemonSetStatus": (
        "currentNumberScheduled=1!:i32 numberMisscheduled=2!:i32 desiredNumberScheduled=3!:i32 "
        "numberReady=4!:i32 observedGeneration=5:i64 updatedNumberScheduled=6:i32 "
        "numberAvailable=7:i32 numberUnavailable=8:i32 collisionCount=9*:i32 "
        "conditions=10:[]DaemonSetCondition"
    ),
    "apps.v1.DaemonSetUpdateStrategy": "type=1:s rollingUpdate=2*:RollingUpdateDaemonSet",
    "apps.v1.Deployment": "metadata=1:meta.v1.ObjectMeta spec=2:DeploymentSpec status=3:DeploymentStatus",
    "apps.v1.DeploymentCondition": (
        "type=1!:s status=2!:s lastUpdateTime=6:meta.v1.Time lastTransitionTime=7:meta.v1.Time "
        "reason=4:s message=5:s"
    ),
    "apps.v1.DeploymentList": "metadata=1:meta.v1.ListMeta items=2!:[]Deployment",
    "apps.v1.DeploymentSpec": (
        "replicas=1*:i32 selector=2*!:meta.v1.LabelSelector template=3!:core.v1.PodTemplateSpec "
        "strategy=4:DeploymentStrategy minReadySeconds=5:i32 revisionHistoryLimit=6*:i32 paused=7:b "
        "progressDeadlineSeconds=9*:i32"
    ),
    "apps.v1.DeploymentStatus": (
        "observedGeneration=1:i64 replicas=2:i32 updatedReplicas=3:i32 readyReplicas=7:i32 "
        "availableReplicas=4:i32 unavailableReplicas=5:i32 terminatingReplicas=9*:i32 "
        "conditions=6:[]DeploymentCondition collisionCount=8*:i32"
    ),
    "apps.v1.DeploymentStrategy": "type=1:s rollingUpdate=2*:RollingUpdateDeployment",
    "apiregistration.v1.APIService": (
        "metadata=1:meta.v1.ObjectMeta spec=2:APIServiceSpec status=3:APIServiceStatus"
    ),
    "apiregistration.v1.APIServiceCondition": (
        "type=1!:s status=2!:s lastTransitionTime=3:meta.v1.Time reason=4:s message=5:s"
    ),
    "apiregistration.v1.APIServiceList": "metadata=1:meta.v1.ListMeta items=2!:[]APIService",
    "apiregistration.v1.APIServiceSpec": (
        "service=1*:ServiceReference group=2:s version=3:s insecureSkipTLSVerify=4:b caBundle=5:y "
        "groupPriorityMinimum=7!:i32 versionPriority=8!:i32"
    ),
    "apiregistration.v1.APIServiceStatus": "conditions=1:[]APIServiceCondition",
    "apiregistration.v1.ServiceReference": "namespace=1:s name=2:s port=3*:i32",
    "apps.v1.ReplicaSet": "metadata=1:meta.v1.ObjectMeta spec=2:ReplicaSetSpec status=3:ReplicaSetStatus",
    "apps.v1.ReplicaSetCondition": "type=1!:s status=2!:s lastTransitionTime=3:meta.v1.Time reason=4:s message=5:s",
    "apps.v1.ReplicaSetList": "metadata=1:meta.v1.ListMeta items=2!:[]ReplicaSet",
    "apps.v1.ReplicaSetSpec": (
        "replicas=1*:i32 minReadySeconds=4:i32 selector=2*!:meta.v1.LabelSelector "
        "template=3:core.v1.PodTemplateSpec"
    ),
    "apps.v1.ReplicaSetStatus": (
        "replicas=1!:i32 fullyLabeledReplicas=2:i32 readyReplicas=4:i32 availableReplicas=5:i32 "
        "terminatingReplicas=7*:i32 observedGeneration=3:i64 conditions=6:[]ReplicaSetCondition"
    ),
    "apps.v1.RollingUpdateDaemonSet": "maxUnavailable=1*:intstr.IntOrString maxSurge=2*:intstr.IntOrString",
    "apps.v1.RollingUpdateDeployment": "maxUnavailable=1*:intstr.IntOrString maxSurge=2*:intstr.IntOrString",
    "apps.v1.RollingUpdateStatefulSetStrategy": "partition=1*:i32 maxUnavailable=2*:intstr.IntOrString",
    "apps.v1.StatefulSet": "metadata=1:meta.v1.ObjectMeta spec=2:StatefulSetSpec status=3:StatefulSetStatus",
    "apps.v1.StatefulSetCondition": "type=1!:s status=2!:s lastTransitionTime=3:meta.v1.Time reason=4:s message=5:s",
    "apps.v1.StatefulSetList": "metadata=1:meta.v1.ListMeta items=2!:[]StatefulSet",
    "apps.v1.StatefulSetOrdinals": "start=1!:i32",
    "apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy": "whenDeleted=1:s whenScaled=2:s",
    "apps.v1.StatefulSetSpec": (
        "replicas=1*:i32 selector=2*!:meta.v1.LabelSelector template=3!:core.v1.PodTemplateSpec "
        "volumeClaimTemplates=4:[]core.v1.PersistentVolumeClaim serviceName=5!:s "
        "podManagementPolicy=6:s updateStrategy=7:StatefulSetUpdateStrategy "
        "revisionHistoryLimit=8*:i32 minReadySeconds=9:i32 "
        "persistentVolumeClaimRetentionPolicy=10*:StatefulSetPersistentVolumeClaimRetentionPolicy "
        "ordinals=11*:StatefulSetOrdinals"
    ),
    "apps.v1.StatefulSetStatus": (
        "observedGeneration=1:i64 replicas=2!:i32 readyReplicas=3:i32 currentReplicas=4:i32 "
        "updatedReplicas=5:i32 currentRevision=6:s updateRevision=7:s collisionCount=9*:i32 "
        "conditions=10:[]StatefulSetCondition availableReplicas=11!:i32"
    ),
    "apps.v1.StatefulSetUpdateStrategy": "type=1:s rollingUpdate=2*:RollingUpdateStatefulSetStrategy",
    "authentication.v1.BoundObjectReference": "kind=1:s apiVersion=2:s name=3:s uid=4:s",
    "authentication.v1.ExtraValue": "@items=1:[]s",
    "authentication.v1.SelfSubjectReview": "metadata=1:meta.v1.ObjectMeta status=2:SelfSubjectReviewStatus",
    "authentication.v1.SelfSubjectReviewStatus": "userInfo=1:UserInfo",
    "authentication.v1.TokenRequest": "metadata=1:meta.v1.ObjectMeta spec=2!:TokenRequestSpec status=3:TokenRequestStatus",
    "authentication.v1.TokenRequestSpec": "audiences=1!:[]s expirationSeconds=4*!:i64 boundObjectRef=3*!:BoundObjectReference",
    "authentication.v1.TokenRequestStatus": "token=1!:s expirationTimestamp=2!:meta.v1.Time",
    "authentication.v1.TokenReview": "metadata=1:meta.v1.ObjectMeta spec=2!:TokenReviewSpec status=3:TokenReviewStatus",
    "authentication.v1.TokenReviewSpec": "token=1:s audiences=2:[]s",
    "authentication.v1.TokenReviewStatus": "authenticated=1:b user=2:UserInfo audiences=4:[]s error=3:s",
    "authentication.v1.UserInfo": "username=1:s uid=2:s groups=3:[]s extra=4:{}ExtraValue",
    "authorization.v1.ExtraValue": "@items=1:[]s",
    "authorization.v1.FieldSelectorAttributes": "rawSelector=1:s requirements=2:[]meta.v1.FieldSelectorRequirement",
    "authorization.v1.LabelSelectorAttributes": "rawSelector=1:s requirements=2:[]meta.v1.LabelSelectorRequirement",
    "authorization.v1.LocalSubjectAccessReview": (
        "metadata=1:meta.v1.ObjectMeta spec=2!:SubjectAccessReviewSpec "
        "status=3:SubjectAccessReviewStatus"
    ),
    "authorization.v1.NonResourceAttributes": "path=1:s verb=2:s",
    "authorization.v1.NonResourceRule": "verbs=1!:[]s nonResourceURLs=2:[]s",
    "authorization.v1.ResourceAttributes": (
        "namespace=1:s verb=2:s group=3:s version=4:s resource=5:s subresource=6:s name=7:s "
        "fieldSelector=8*:FieldSelectorAttributes labelSelector=9*:LabelSelectorAttributes"
    ),
    "authorization.v1.ResourceRule": "verbs=1!:[]s apiGroups=2:[]s resources=3:[]s resourceNames=4:[]s",
    "authorization.v1.SelfSubjectAccessReview": (
        "metadata=1:meta.v1.ObjectMeta spec=2!:SelfSubjectAccessReviewSpec "
        "status=3:SubjectAccessReviewStatus"
    ),
    "authorization.v1.SelfSubjectAccessReviewSpec": (
        "resourceAttributes=1*:ResourceAttributes "
        "nonResourceAttributes=2*:NonResourceAttributes"
    ),
    "authorization.v1.SelfSubjectRulesReview": (
        "metadata=1:meta.v1.ObjectMeta spec=2!:SelfSubjectRulesReviewSpec "
        "status=3:SubjectRulesReviewStatus"
    ),
    "authorization.v1.SelfSubjectRulesReviewSpec": "namespace=1:s",
    "authorization.v1.SubjectAccessReview": (
        "metadata=1:meta.v1.ObjectMeta spec=2!:SubjectAccessReviewSpec "
        "status=3:SubjectAccessReviewStatus"
    ),
    "authorization.v1.SubjectAccessReviewSpec": (
        "resourceAttributes=1*:ResourceAttributes nonResourceAttributes=2*:NonResourceAttributes "
        "user=3:s groups=4:[]s extra=5:{}ExtraValue uid=6:s"
    ),
    "authorization.v1.SubjectAccessReviewStatus": "allowed=1!:b denied=4:b reason=2:s evaluationError=3:s",
    "authorization.v1.SubjectRulesReviewStatus": (
        "resourceRules=1!:[]ResourceRule nonResourceRules=2!:[]NonResourceRule incomplete=3!:b "
        "evaluationError=4:s"
    ),
    "autoscaling.v1.CrossVersionObjectReference": "kind=1!:s name=2!:s apiVersion=3:s",
    "autoscaling.v1.HorizontalPodAutoscaler": (
        "metadata=1:meta.v1.ObjectMeta spec=2:HorizontalPodAutoscalerSpec "
        "status=3:HorizontalPodAutoscalerStatus"
    ),
    "autoscaling.v1.HorizontalPodAutoscalerList": "metadata=1:meta.v1.ListMeta items=2!:[]HorizontalPodAutoscaler",
    "autoscaling.v1.HorizontalPodAutoscalerSpec": (
        "scaleTargetRef=1!:CrossVersionObjectReference minReplicas=2*:i32 maxReplicas=3!:i32 "
        "targetCPUUtilizationPercentage=4*:i32"
    ),
    "autoscaling.v1.HorizontalPodAutoscalerStatus": (
        "observedGeneration=1*:i64 lastScaleTime=2*:meta.v1.Time currentReplicas=3!:i32 "
        "desiredReplicas=4!:i32 currentCPUUtilizationPercentage=5*:i32"
    ),
    "autoscaling.v1.Scale": "metadata=1:meta.v1.ObjectMeta spec=2:ScaleSpec status=3:ScaleStatus",
    "autoscaling.v1.ScaleSpec": "replicas=1:i32",
    "autoscaling.v1.ScaleStatus": "replicas=1!:i32 selector=2:s",
    "autoscaling.v2.ContainerResourceMetricSource": "name=1!:s target=2!:MetricTarget container=3!:s",
    "autoscaling.v2.ContainerResourceMetricStatus": "name=1!:s current=2!:MetricValueStatus container=3!:s",
    "autoscaling.v2.CrossVersionObjectReference": "kind=1!:s name=2!:s apiVersion=3:s",
    "autoscaling.v2.ExternalMetricSource": "metric=1!:MetricIdentifier target=2!:MetricTarget",
    "autoscaling.v2.ExternalMetricStatus": "metric=1!:MetricIdentifier current=2!:MetricValueStatus",
    "autoscaling.v2.HPAScalingPolicy": "type=1!:s value=2!:i32 periodSeconds=3!:i32",
    "autoscaling.v2.HPAScalingRules": (
        "stabilizationWindowSeconds=3*:i32 selectPolicy=1*:s policies=2:[]HPAScalingPolicy "
        "tolerance=4*:resource.Quantity"
    ),
    "autoscaling.v2.HorizontalPodAutoscaler": (
        "metadata=1:meta.v1.ObjectMeta spec=2:HorizontalPodAutoscalerSpec "
        "status=3:HorizontalPodAutoscalerStatus"
    ),
    "autoscaling.v2.HorizontalPodAutoscalerBehavior": "scaleUp=1*:HPAScalingRules scaleDown=2*:HPAScalingRules",
    "autoscaling.v2.HorizontalPodAutoscalerCondition": (
        "type=1!:s status=2!:s "
        "lastTransitionTime=3:meta.v1.Time reason=4:s message=5:s"
    ),
    "autoscaling.v2.HorizontalPodAutoscalerList": "metadata=1:meta.v1.ListMeta items=2!:[]HorizontalPodAutoscaler",
    "autoscaling.v2.HorizontalPodAutoscalerSpec": (
        "scaleTargetRef=1!:CrossVersionObjectReference minReplicas=2*:i32 maxReplicas=3!:i32 "
        "metrics=4:[]MetricSpec behavior=5*:HorizontalPodAutoscalerBehavior"
    ),
    "autoscaling.v2.HorizontalPodAutoscalerStatus": (
        "observedGeneration=1*:i64 lastScaleTime=2*:meta.v1.Time currentReplicas=3:i32 "
        "desiredReplicas=4!:i32 currentMetrics=5!:[]MetricStatus "
        "conditions=6:[]HorizontalPodAutoscalerCondition"
    ),
    "autoscaling.v2.MetricIdentifier": "name=1!:s selector=2*:meta.v1.LabelSelector",
    "autoscaling.v2.MetricSpec": (
        "type=1!:s object=2*:ObjectMetricSource pods=3*:PodsMetricSource "
        "resource=4*:ResourceMetricSource containerResource=7*:ContainerResourceMetricSource "
        "external=5*:ExternalMetricSource"
    ),
    "autoscaling.v2.MetricStatus": (
        "type=1!:s object=2*:ObjectMetricStatus pods=3*:PodsMetricStatus "
        "resource=4*:ResourceMetricStatus containerResource=7*:ContainerResourceMetricStatus "
        "external=5*:ExternalMetricStatus"
    ),
    "autoscaling.v2.MetricTarget": (
        "type=1!:s value=2*:resource.Quantity averageValue=3*:resource.Quantity "
        "averageUtilization=4*:i32"
    ),
    "autoscaling.v2.MetricValueStatus": "value=1*:resource.Quantity averageValue=2*:resource.Quantity averageUtilization=3*:i32",
    "autoscaling.v2.ObjectMetricSource": (
        "describedObject=1!:CrossVersionObjectReference target=2!:MetricTarget "
        "metric=3!:MetricIdentifier"
    ),
    "autoscaling.v2.ObjectMetricStatus": (
        "metric=1!:MetricIdentifier current=2!:MetricValueStatus "
        "describedObject=3!:CrossVersionObjectReference"
    ),
    "autoscaling.v2.PodsMetricSource": "metric=1!:MetricIdentifier target=2!:MetricTarget",
    "autoscaling.v2.PodsMetricStatus": "metric=1!:MetricIdentifier current=2!:MetricValueStatus",
    "autoscaling.v2.ResourceMetricSource": "name=1!:s target=2!:MetricTarget",
    "autoscaling.v2.ResourceMetricStatus": "name=1!:s current=2!:MetricValueStatus",
    "batch.v1.CronJob": "metadata=1:meta.v1.ObjectMeta spec=2:CronJobSpec status=3:CronJobStatus",
    "batch.v1.CronJobList": "metadata=1:meta.v1.ListMeta items=2!:[]CronJob",
    "batch.v1.CronJobSpec": (
        "schedule=1!:s timeZone=8*:s startingDeadlineSeconds=2*:i64 concurrencyPolicy=3:s "
        "suspend=4*:b jobTemplate=5!:JobTemplateSpec successfulJobsHistoryLimit=6*:i32 "
        "failedJobsHistoryLimit=7*:i32"
    ),
    "batch.v1.CronJobStatus": (
        "active=1:[]core.v1.ObjectReference lastScheduleTime=4*:meta.v1.Time "
        "lastSuccessfulTime=5*:meta.v1.Time"
    ),
    "batch.v1.Job": "metadata=1:meta.v1.ObjectMeta spec=2:JobSpec status=3:JobStatus",
    "batch.v1.JobCondition": (
        "type=1!:s status=2!:s lastProbeTime=3:meta.v1.Time lastTransitionTime=4:meta.v1.Time "
        "reason=5:s message=6:s"
    ),
    "batch.v1.JobList": "metadata=1:meta.v1.ListMeta items=2!:[]Job",
    "batch.v1.JobSpec": (
        "parallelism=1*:i32 completions=2*:i32 activeDeadlineSeconds=3*:i64 "
        "podFailurePolicy=11*:PodFailurePolicy successPolicy=16*:SuccessPolicy backoffLimit=7*:i32 "
        "backoffLimitPerIndex=12*:i32 maxFailedIndexes=13*:i32 selector=4*:meta.v1.LabelSelector "
        "manualSelector=5*:b template=6!:core.v1.PodTemplateSpec ttlSecondsAfterFinished=8*:i32 "
        "completionMode=9*:s suspend=10*:b podReplacementPolicy=14*:s managedBy=15*:s"
    ),
    "batch.v1.JobStatus": (
        "conditions=1:[]JobCondition startTime=2*:meta.v1.Time completionTime=3*:meta.v1.Time "
        "active=4:i32 succeeded=5:i32 failed=6:i32 terminating=11*:i32 completedIndexes=7:s "
        "failedIndexes=10*:s uncountedTerminatedPods=8*:UncountedTerminatedPods ready=9*:i32"
    ),
    "batch.v1.JobTemplateSpec": "metadata=1:meta.v1.ObjectMeta spec=2:JobSpec",
    "batch.v1.PodFailurePolicy": "rules=1!:[]PodFailurePolicyRule",
    "batch.v1.PodFailurePolicyOnExitCodesRequirement": "containerName=1*:s operator=2!:s values=3!:[]i32",
    "batch.v1.PodFailurePolicyOnPodConditionsPattern": "type=1!:s status=2!:s",
    "batch.v1.PodFailurePolicyRule": (
        "action=1!:s onExitCodes=2*:PodFailurePolicyOnExitCodesRequirement "
        "onPodConditions=3:[]PodFailurePolicyOnPodConditionsPattern"
    ),
    "batch.v1.SuccessPolicy": "rules=1!:[]SuccessPolicyRule",
    "batch.v1.SuccessPolicyRule": "succeededIndexes=1*:s succeededCount=2*:i32",
    "batch.v1.UncountedTerminatedPods": "succeeded=1:[]s failed=2:[]s",
    "coordination.v1.Lease": "metadata=1:meta.v1.ObjectMeta spec=2:LeaseSpec",
    "coordination.v1.LeaseList": "metadata=1:meta.v1.ListMeta items=2!:[]Lease",
    "coordination.v1.LeaseSpec": (
        "holderIdentity=1*:s leaseDurationSeconds=2*:i32 acquireTime=3*:meta.v1.MicroTime "
        "renewTime=4*:meta.v1.MicroTime leaseTransitions=5*:i32 strategy=6*:s preferredHolder=7*:s"
    ),
    "core.v1.AWSElasticBlockStoreVolumeSource": "volumeID=1!:s fsType=2:s partition=3:i32 readOnly=4:b",
    "core.v1.Affinity": "nodeAffinity=1*:NodeAffinity podAffinity=2*:PodAffinity podAntiAffinity=3*:PodAntiAffinity",
    "core.v1.AppArmorProfile": "type=1!:s localhostProfile=2*:s",
    "core.v1.AttachedVolume": "name=1!:s devicePath=2!:s",
    "core.v1.AzureDiskVolumeSource": "diskName=1!:s diskURI=2!:s cachingMode=3*:s fsType=4*:s readOnly=5*:b kind=6*:s",
    "core.v1.AzureFilePersistentVolumeSource": "secretName=1!:s shareName=2!:s readOnly=3:b secretNamespace=4*!:s",
    "core.v1.AzureFileVolumeSource": "secretName=1!:s shareName=2!:s readOnly=3:b",
    "core.v1.Binding": "metadata=1:meta.v1.ObjectMeta target=2!:ObjectReference",
    "core.v1.CSIPersistentVolumeSource": (
        "driver=1!:s volumeHandle=2!:s readOnly=3:b fsType=4:s volumeAttributes=5:{}s "
        "controllerPublishSecretRef=6*:SecretReference nodeStageSecretRef=7*:SecretReference "
        "nodePublishSecretRef=8*:SecretReference controllerExpandSecretRef=9*:SecretReference "
        "nodeExpandSecretRef=10*:SecretReference"
    ),
    "core.v1.CSIVolumeSource": (
        "driver=1!:s readOnly=2*:b fsType=3*:s volumeAttributes=4:{}s "
        "nodePublishSecretRef=5*:LocalObjectReference"
    ),
    "core.v1.Capabilities": "add=1:[]s drop=2:[]s",
    "core.v1.CephFSPersistentVolumeSource": (
        "monitors=1!:[]s path=2:s user=3:s "
        "secretFile=4:s secretRef=5*:SecretReference readOnly=6:b"
    ),
    "core.v1.CephFSVolumeSource": (
        "monitors=1!:[]s path=2:s user=3:s secretFile=4:s secretRef=5*:LocalObjectReference "
        "readOnly=6:b"
    ),
    "core.v1.CinderPersistentVolumeSource": "volumeID=1!:s fsType=2:s readOnly=3:b secretRef=4*:SecretReference",
    "core.v1.CinderVolumeSource": "volumeID=1!:s fsType=2:s readOnly=3:b secretRef=4*:LocalObjectReference",
    "core.v1.ClientIPConfig": "timeoutSeconds=1*:i32",
    "core.v1.ClusterTrustBundleProjection": (
        "name=1*:s signerName=2*:s "
        "labelSelector=3*:meta.v1.LabelSelector optional=5*:b path=4!:s"
    ),
    "core.v1.ComponentCondition": "type=1!:s status=2!:s message=3:s error=4:s",
    "core.v1.ComponentStatus": "metadata=1:meta.v1.ObjectMeta conditions=2:[]ComponentCondition",
    "core.v1.ComponentStatusList": "metadata=1:meta.v1.ListMeta items=2!:[]ComponentStatus",
    "core.v1.ConfigMap": "metadata=1:meta.v1.ObjectMeta immutable=4*:b data=2:{}s binaryData=3:{}y",
    "core.v1.ConfigMapEnvSource": "...=1:LocalObjectReference optional=2*:b",
    "core.v1.ConfigMapKeySelector": "...=1:LocalObjectReference key=2!:s optional=3*:b",
    "core.v1.ConfigMapList": "metadata=1:meta.v1.ListMeta items=2!:[]ConfigMap",
    "core.v1.ConfigMapNodeConfigSource": "namespace=1!:s name=2!:s uid=3:s resourceVersion=4:s kubeletConfigKey=5!:s",
    "core.v1.ConfigMapProjection": "...=1:LocalObjectReference items=2:[]KeyToPath optional=4*:b",
    "core.v1.ConfigMapVolumeSource": "...=1:LocalObjectReference items=2:[]KeyToPath defaultMode=3*:i32 optional=4*:b",
    "core.v1.Container": (
        "name=1!:s image=2:s command=3:[]s args=4:[]s workingDir=5:s ports=6:[]ContainerPort "
        "envFrom=19:[]EnvFromSource env=7:[]EnvVar resources=8:ResourceRequirements "
        "resizePolicy=23:[]ContainerResizePolicy restartPolicy=24*:s volumeMounts=9:[]VolumeMount "
        "volumeDevices=21:[]VolumeDevice livenessProbe=10*:Probe readinessProbe=11*:Probe "
        "startupProbe=22*:Probe lifecycle=12*:Lifecycle terminationMessagePath=13:s "
        "terminationMessagePolicy=20:s imagePullPolicy=14:s securityContext=15*:SecurityContext "
        "stdin=16:b stdinOnce=17:b tty=18:b"
    ),
    "core.v1.ContainerImage": "names=1!:[]s sizeBytes=2:i64",
    "core.v1.ContainerPort": "name=1:s hostPort=2:i32 containerPort=3!:i32 protocol=4:s hostIP=5:s",
    "core.v1.ContainerResizePolicy": "resourceName=1!:s restartPolicy=2!:s",
    "core.v1.ContainerState": (
        "waiting=1*:ContainerStateWaiting running=2*:ContainerStateRunning "
        "terminated=3*:ContainerStateTerminated"
    ),
    "core.v1.ContainerStateRunning": "startedAt=1:meta.v1.Time",
    "core.v1.ContainerStateTerminated": (
        "exitCode=1!:i32 signal=2:i32 reason=3:s message=4:s startedAt=5:meta.v1.Time "
        "finishedAt=6:meta.v1.Time containerID=7:s"
    ),
    "core.v1.ContainerStateWaiting": "reason=1:s message=2:s",
    "core.v1.ContainerStatus": (
        "name=1!:s state=2:ContainerState lastState=3:ContainerState ready=4!:b restartCount=5!:i32 "
        "image=6!:s imageID=7!:s containerID=8:s started=9*:b "
        "allocatedResources=10:{}resource.Quantity resources=11*:ResourceRequirements "
        "volumeMounts=12:[]VolumeMountStatus user=13*:ContainerUser "
        "allocatedResourcesStatus=14:[]ResourceStatus stopSignal=15*:s"
    ),
    "core.v1.ContainerUser": "linux=1*:LinuxContainerUser",
    "core.v1.DaemonEndpoint": "Port=1!:i32",
    "core.v1.DownwardAPIProjection": "items=1:[]DownwardAPIVolumeFile",
    "core.v1.DownwardAPIVolumeFile": (
        "path=1!:s fieldRef=2*:ObjectFieldSelector resourceFieldRef=3*:ResourceFieldSelector "
        "mode=4*:i32"
    ),
    "core.v1.DownwardAPIVolumeSource": "items=1:[]DownwardAPIVolumeFile defaultMode=2*:i32",
    "core.v1.EmptyDirVolumeSource": "medium=1:s sizeLimit=2*:resource.Quantity",
    "core.v1.EndpointAddress": "ip=1!:s hostname=3:s nodeName=4*:s targetRef=2*:ObjectReference",
    "core.v1.EndpointPort": "name=1:s port=2!:i32 protocol=3:s appProtocol=4*:s",
    "core.v1.EndpointSubset": "addresses=1:[]EndpointAddress notReadyAddresses=2:[]EndpointAddress ports=3:[]EndpointPort",
    "core.v1.Endpoints": "metadata=1:meta.v1.ObjectMeta subsets=2:[]EndpointSubset",
    "core.v1.EndpointsList": "metadata=1:meta.v1.ListMeta items=2!:[]Endpoints",
    "core.v1.EnvFromSource": "prefix=1:s configMapRef=2*:ConfigMapEnvSource secretRef=3*:SecretEnvSource",
    "core.v1.EnvVar": "name=1!:s value=2:s valueFrom=3*:EnvVarSource",
    "core.v1.EnvVarSource": (
        "fieldRef=1*:ObjectFieldSelector resourceFieldRef=2*:ResourceFieldSelector "
        "configMapKeyRef=3*:ConfigMapKeySelector secretKeyRef=4*:SecretKeySelector"
    ),
    "core.v1.EphemeralContainer": "...=1:EphemeralContainerCommon targetContainerName=2:s",
    "core.v1.EphemeralContainerCommon": (
        "name=1!:s image=2:s command=3:[]s args=4:[]s workingDir=5:s ports=6:[]ContainerPort "
        "envFrom=19:[]EnvFromSource env=7:[]EnvVar resources=8:ResourceRequirements "
        "resizePolicy=23:[]ContainerResizePolicy restartPolicy=24*:s volumeMounts=9:[]VolumeMount "
        "volumeDevices=21:[]VolumeDevice livenessProbe=10*:Probe readinessProbe=11*:Probe "
        "startupProbe=22*:Probe lifecycle=12*:Lifecycle terminationMessagePath=13:s "
        "terminationMessagePolicy=20:s imagePullPolicy=14:s securityContext=15*:SecurityContext "
        "stdin=16:b stdinOnce=17:b tty=18:b"
    ),
    "core.v1.EphemeralVolumeSource": "volumeClaimTemplate=1*:PersistentVolumeClaimTemplate",
    "core.v1.Event": (
        "metadata=1!:meta.v1.ObjectMeta involvedObject=2!:ObjectReference reason=3:s message=4:s "
        "source=5:EventSource firstTimestamp=6:meta.v1.Time lastTimestamp=7:meta.v1.Time "
        "count=8:i32 type=9:s eventTime=10:meta.v1.MicroTime series=11*:EventSeries action=12:s "
        "related=13*:ObjectReference reportingComponent=14!:s reportingInstance=15!:s"
    ),
    "core.v1.EventList": "metadata=1:meta.v1.ListMeta items=2!:[]Event",
    "core.v1.EventSeries": "count=1:i32 lastObservedTime=2:meta.v1.MicroTime",
    "core.v1.EventSource": "component=1:s host=2:s",
    "core.v1.ExecAction": "command=1:[]s",
    "core.v1.FCVolumeSource": "targetWWNs=1:[]s lun=2*:i32 fsType=3:s readOnly=4:b wwids=5:[]s",
    "core.v1.FlexPersistentVolumeSource": "driver=1!:s fsType=2:s secretRef=3*:SecretReference readOnly=4:b options=5:{}s",
    "core.v1.FlexVolumeSource": "driver=1!:s fsType=2:s secretRef=3*:LocalObjectReference readOnly=4:b options=5:{}s",
    "core.v1.FlockerVolumeSource": "datasetName=1:s datasetUUID=2:s",
    "core.v1.GCEPersistentDiskVolumeSource": "pdName=1!:s fsType=2:s partition=3:i32 readOnly=4:b",
    "core.v1.GRPCAction": "port=1!:i32 service=2*!:s",
    "core.v1.GitRepoVolumeSource": "repository=1!:s revision=2:s directory=3:s",
    "core.v1.GlusterfsPersistentVolumeSource": "endpoints=1!:s path=2!:s readOnly=3:b endpointsNamespace=4*:s",
    "core.v1.GlusterfsVolumeSource": "endpoints=1!:s path=2!:s readOnly=3:b",
    "core.v1.HTTPGetAction": "path=1:s port=2!:intstr.IntOrString host=3:s scheme=4:s httpHeaders=5:[]HTTPHeader",
    "core.v1.HTTPHeader": "name=1!:s value=2!:s",
    "core.v1.HostAlias": "ip=1!:s hostnames=2:[]s",
    "core.v1.HostIP": "ip=1!:s",
    "core.v1.HostPathVolumeSource": "path=1!:s type=2*:s",
    "core.v1.ISCSIPersistentVolumeSource": (
        "targetPortal=1!:s iqn=2!:s lun=3!:i32 iscsiInterface=4:s fsType=5:s readOnly=6:b "
        "portals=7:[]s chapAuthDiscovery=8:b chapAuthSession=11:b secretRef=10*:SecretReference "
        "initiatorName=12*:s"
    ),
    "core.v1.ISCSIVolumeSource": (
        "targetPortal=1!:s iqn=2!:s lun=3!:i32 iscsiInterface=4:s fsType=5:s readOnly=6:b "
        "portals=7:[]s chapAuthDiscovery=8:b chapAuthSession=11:b "
        "secretRef=10*:LocalObjectReference initiatorName=12*:s"
    ),
    "core.v1.ImageVolumeSource": "reference=1:s pullPolicy=2:s",
    "core.v1.KeyToPath": "key=1!:s path=2!:s mode=3*:i32",
    "core.v1.Lifecycle": "postStart=1*:LifecycleHandler preStop=2*:LifecycleHandler stopSignal=3*:s",
    "core.v1.LifecycleHandler": (
        "exec=1*:ExecAction httpGet=2*:HTTPGetAction tcpSocket=3*:TCPSocketAction "
        "sleep=4*:SleepAction"
    ),
    "core.v1.LimitRange": "metadata=1:meta.v1.ObjectMeta spec=2:LimitRangeSpec",
    "core.v1.LimitRangeItem": (
        "type=1!:s max=2:{}resource.Quantity min=3:{}resource.Quantity "
        "default=4:{}resource.Quantity defaultRequest=5:{}resource.Quantity "
        "maxLimitRequestRatio=6:{}resource.Quantity"
    ),
    "core.v1.LimitRangeList": "metadata=1:meta.v1.ListMeta items=2!:[]LimitRange",
    "core.v1.LimitRangeSpec": "limits=1!:[]LimitRangeItem",
    "core.v1.LinuxContainerUser": "uid=1!:i64 gid=2!:i64 supplementalGroups=3:[]i64",
    "core.v1.LoadBalancerIngress": "ip=1:s hostname=2:s ipMode=3*:s ports=4:[]PortStatus",
    "core.v1.LoadBalancerStatus": "ingress=1:[]LoadBalancerIngress",
    "core.v1.LocalObjectReference": "name=1:s",
    "core.v1.LocalVolumeSource": "path=1!:s fsType=2*:s",
    "core.v1.ModifyVolumeStatus": "targetVolumeAttributesClassName=1:s status=2!:s",
    "core.v1.NFSVolumeSource": "server=1!:s path=2!:s readOnly=3:b",
    "core.v1.Namespace": "metadata=1:meta.v1.ObjectMeta spec=2:NamespaceSpec status=3:NamespaceStatus",
    "core.v1.NamespaceCondition": "type=1!:s status=2!:s lastTransitionTime=4:meta.v1.Time reason=5:s message=6:s",
    "core.v1.NamespaceList": "metadata=1:meta.v1.ListMeta items=2!:[]Namespace",
    "core.v1.NamespaceSpec": "finalizers=1:[]s",
    "core.v1.NamespaceStatus": "phase=1:s conditions=2:[]NamespaceCondition",
    "core.v1.Node": "metadata=1:meta.v1.ObjectMeta spec=2:NodeSpec status=3:NodeStatus",
    "core.v1.NodeAddress": "type=1!:s address=2!:s",
    "core.v1.NodeAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution=1*:NodeSelector "
        "preferredDuringSchedulingIgnoredDuringExecution=2:[]PreferredSchedulingTerm"
    ),
    "core.v1.NodeCondition": (
        "type=1!:s status=2!:s lastHeartbeatTime=3:meta.v1.Time lastTransitionTime=4:meta.v1.Time "
        "reason=5:s message=6:s"
    ),
    "core.v1.NodeConfigSource": "configMap=2*:ConfigMapNodeConfigSource",
    "core.v1.NodeConfigStatus": (
        "assigned=1*:NodeConfigSource active=2*:NodeConfigSource lastKnownGood=3*:NodeConfigSource "
        "error=4:s"
    ),
    "core.v1.NodeDaemonEndpoints": "kubeletEndpoint=1:DaemonEndpoint",
    "core.v1.NodeFeatures": "supplementalGroupsPolicy=1*:b",
    "core.v1.NodeList": "metadata=1:meta.v1.ListMeta items=2!:[]Node",
    "core.v1.NodeProxyOptions": "path=1:s",
    "core.v1.NodeRuntimeHandler": "name=1!:s features=2*:NodeRuntimeHandlerFeatures",
    "core.v1.NodeRuntimeHandlerFeatures": "recursiveReadOnlyMounts=1*:b userNamespaces=2*:b",
    "core.v1.NodeSelector": "nodeSelectorTerms=1!:[]NodeSelectorTerm",
    "core.v1.NodeSelectorRequirement": "key=1!:s operator=2!:s values=3:[]s",
    "core.v1.NodeSelectorTerm": "matchExpressions=1:[]NodeSelectorRequirement matchFields=2:[]NodeSelectorRequirement",
    "core.v1.NodeSpec": (
        "podCIDR=1:s podCIDRs=7:[]s providerID=3:s unschedulable=4:b taints=5:[]Taint "
        "configSource=6*:NodeConfigSource externalID=2:s"
    ),
    "core.v1.NodeStatus": (
        "capacity=1:{}resource.Quantity allocatable=2:{}resource.Quantity phase=3:s "
        "conditions=4:[]NodeCondition addresses=5:[]NodeAddress "
        "daemonEndpoints=6:NodeDaemonEndpoints nodeInfo=7:NodeSystemInfo images=8:[]ContainerImage "
        "volumesInUse=9:[]s volumesAttached=10:[]AttachedVolume config=11*:NodeConfigStatus "
        "runtimeHandlers=12:[]NodeRuntimeHandler features=13*:NodeFeatures"
    ),
    "core.v1.NodeSwapStatus": "capacity=1*:i64",
    "core.v1.NodeSystemInfo": (
        "machineID=1!:s systemUUID=2!:s bootID=3!:s kernelVersion=4!:s osImage=5!:s "
        "containerRuntimeVersion=6!:s kubeletVersion=7!:s kubeProxyVersion=8!:s "
        "operatingSystem=9!:s architecture=10!:s swap=11*:NodeSwapStatus"
    ),
    "core.v1.ObjectFieldSelector": "apiVersion=1:s fieldPath=2!:s",
    "core.v1.ObjectReference": "kind=1:s namespace=2:s name=3:s uid=4:s apiVersion=5:s resourceVersion=6:s fieldPath=7:s",
    "core.v1.PersistentVolume": "metadata=1:meta.v1.ObjectMeta spec=2:PersistentVolumeSpec status=3:PersistentVolumeStatus",
    "core.v1.PersistentVolumeClaim": (
        "metadata=1:meta.v1.ObjectMeta spec=2:PersistentVolumeClaimSpec "
        "status=3:PersistentVolumeClaimStatus"
    ),
    "core.v1.PersistentVolumeClaimCondition": (
        "type=1!:s status=2!:s lastProbeTime=3:meta.v1.Time lastTransitionTime=4:meta.v1.Time "
        "reason=5:s message=6:s"
    ),
    "core.v1.PersistentVolumeClaimList": "metadata=1:meta.v1.ListMeta items=2!:[]PersistentVolumeClaim",
    "core.v1.PersistentVolumeClaimSpec": (
        "accessModes=1:[]s selector=4*:meta.v1.LabelSelector resources=2:VolumeResourceRequirements "
        "volumeName=3:s storageClassName=5*:s volumeMode=6*:s "
        "dataSource=7*:TypedLocalObjectReference dataSourceRef=8*:TypedObjectReference "
        "volumeAttributesClassName=9*:s"
    ),
    "core.v1.PersistentVolumeClaimStatus": (
        "phase=1:s accessModes=2:[]s capacity=3:{}resource.Quantity "
        "conditions=4:[]PersistentVolumeClaimCondition allocatedResources=5:{}resource.Quantity "
        "allocatedResourceStatuses=7:{}s currentVolumeAttributesClassName=8*:s "
        "modifyVolumeStatus=9*:ModifyVolumeStatus"
    ),
    "core.v1.PersistentVolumeClaimTemplate": "metadata=1:meta.v1.ObjectMeta spec=2!:PersistentVolumeClaimSpec",
    "core.v1.PersistentVolumeClaimVolumeSource": "claimName=1!:s readOnly=2:b",
    "core.v1.PersistentVolumeList": "metadata=1:meta.v1.ListMeta items=2!:[]PersistentVolume",
    "core.v1.PersistentVolumeSource": (
        "gcePersistentDisk=1*:GCEPersistentDiskVolumeSource "
        "awsElasticBlockStore=2*:AWSElasticBlockStoreVolumeSource hostPath=3*:HostPathVolumeSource "
        "glusterfs=4*:GlusterfsPersistentVolumeSource nfs=5*:NFSVolumeSource "
        "rbd=6*:RBDPersistentVolumeSource iscsi=7*:ISCSIPersistentVolumeSource "
        "cinder=8*:CinderPersistentVolumeSource cephfs=9*:CephFSPersistentVolumeSource "
        "fc=10*:FCVolumeSource flocker=11*:FlockerVolumeSource "
        "flexVolume=12*:FlexPersistentVolumeSource azureFile=13*:AzureFilePersistentVolumeSource "
        "vsphereVolume=14*:VsphereVirtualDiskVolumeSource quobyte=15*:QuobyteVolumeSource "
        "azureDisk=16*:AzureDiskVolumeSource "
        "photonPersistentDisk=17*:PhotonPersistentDiskVolumeSource "
        "portworxVolume=18*:PortworxVolumeSource scaleIO=19*:ScaleIOPersistentVolumeSource "
        "local=20*:LocalVolumeSource storageos=21*:StorageOSPersistentVolumeSource "
        "csi=22*:CSIPersistentVolumeSource"
    ),
    "core.v1.PersistentVolumeSpec": (
        "capacity=1:{}resource.Quantity ...=2:PersistentVolumeSource accessModes=3:[]s "
        "claimRef=4*:ObjectReference persistentVolumeReclaimPolicy=5:s storageClassName=6:s "
        "mountOptions=7:[]s volumeMode=8*:s nodeAffinity=9*:VolumeNodeAffinity "
        "volumeAttributesClassName=10*:s"
    ),
    "core.v1.PersistentVolumeStatus": "phase=1:s message=2:s reason=3:s lastPhaseTransitionTime=4*:meta.v1.Time",
    "core.v1.PhotonPersistentDiskVolumeSource": "pdID=1!:s fsType=2:s",
    "core.v1.Pod": "metadata=1:meta.v1.ObjectMeta spec=2:PodSpec status=3:PodStatus",
    "core.v1.PodAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution=1:[]PodAffinityTerm "
        "preferredDuringSchedulingIgnoredDuringExecution=2:[]WeightedPodAffinityTerm"
    ),
    "core.v1.PodAffinityTerm": (
        "labelSelector=1*:meta.v1.LabelSelector namespaces=2:[]s topologyKey=3!:s "
        "namespaceSelector=4*:meta.v1.LabelSelector matchLabelKeys=5:[]s mismatchLabelKeys=6:[]s"
    ),
    "core.v1.PodAntiAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution=1:[]PodAffinityTerm "
        "preferredDuringSchedulingIgnoredDuringExecution=2:[]WeightedPodAffinityTerm"
    ),
    "core.v1.PodAttachOptions": "stdin=1:b stdout=2:b stderr=3:b tty=4:b container=5:s",
    "core.v1.PodCondition": (
        "type=1!:s observedGeneration=7:i64 status=2!:s lastProbeTime=3:meta.v1.Time "
        "lastTransitionTime=4:meta.v1.Time reason=5:s message=6:s"
    ),
    "core.v1.PodDNSConfig": "nameservers=1:[]s searches=2:[]s options=3:[]PodDNSConfigOption",
    "core.v1.PodDNSConfigOption": "name=1:s value=2*:s",
    "core.v1.PodExecOptions": "stdin=1:b stdout=2:b stderr=3:b tty=4:b container=5:s command=6!:[]s",
    "core.v1.PodIP": "ip=1!:s",
    "core.v1.PodList": "metadata=1:meta.v1.ListMeta items=2!:[]Pod",
    "core.v1.PodLogOptions": (
        "container=1:s follow=2:b previous=3:b sinceSeconds=4*:i64 sinceTime=5*:meta.v1.Time "
        "timestamps=6:b tailLines=7*:i64 limitBytes=8*:i64 insecureSkipTLSVerifyBackend=9:b "
        "stream=10*:s"
    ),
    "core.v1.PodOS": "name=1!:s",
    "core.v1.PodPortForwardOptions": "ports=1:[]i32",
    "core.v1.PodProxyOptions": "path=1:s",
    "core.v1.PodReadinessGate": "conditionType=1!:s",
    "core.v1.PodResourceClaim": "name=1!:s resourceClaimName=3*:s resourceClaimTemplateName=4*:s",
    "core.v1.PodResourceClaimStatus": "name=1!:s resourceClaimName=2*:s",
    "core.v1.PodSchedulingGate": "name=1!:s",
    "core.v1.PodSecurityContext": (
        "seLinuxOptions=1*:SELinuxOptions windowsOptions=8*:WindowsSecurityContextOptions "
        "runAsUser=2*:i64 runAsGroup=6*:i64 runAsNonRoot=3*:b supplementalGroups=4:[]i64 "
        "supplementalGroupsPolicy=12*:s fsGroup=5*:i64 sysctls=7:[]Sysctl fsGroupChangePolicy=9*:s "
        "seccompProfile=10*:SeccompProfile appArmorProfile=11*:AppArmorProfile "
        "seLinuxChangePolicy=13*:s"
    ),
    "core.v1.PodSpec": (
        "volumes=1:[]Volume initContainers=20:[]Container containers=2!:[]Container "
        "ephemeralContainers=34:[]EphemeralContainer restartPolicy=3:s "
        "terminationGracePeriodSeconds=4*:i64 activeDeadlineSeconds=5*:i64 dnsPolicy=6:s "
        "nodeSelector=7:{}s serviceAccountName=8:s serviceAccount=9:s "
        "automountServiceAccountToken=21*:b nodeName=10:s hostNetwork=11:b hostPID=12:b "
        "hostIPC=13:b shareProcessNamespace=27*:b securityContext=14*:PodSecurityContext "
        "imagePullSecrets=15:[]LocalObjectReference hostname=16:s subdomain=17:s "
        "affinity=18*:Affinity schedulerName=19:s tolerations=22:[]Toleration "
        "hostAliases=23:[]HostAlias priorityClassName=24:s priority=25*:i32 "
        "dnsConfig=26*:PodDNSConfig readinessGates=28:[]PodReadinessGate runtimeClassName=29*:s "
        "enableServiceLinks=30*:b preemptionPolicy=31*:s overhead=32:{}resource.Quantity "
        "topologySpreadConstraints=33:[]TopologySpreadConstraint setHostnameAsFQDN=35*:b "
        "os=36*:PodOS hostUsers=37*:b schedulingGates=38:[]PodSchedulingGate "
        "resourceClaims=39:[]PodResourceClaim resources=40*:ResourceRequirements"
    ),
    "core.v1.PodStatus": (
        "observedGeneration=17:i64 phase=1:s conditions=2:[]PodCondition message=3:s reason=4:s "
        "nominatedNodeName=11:s hostIP=5:s hostIPs=16:[]HostIP podIP=6:s podIPs=12:[]PodIP "
        "startTime=7*:meta.v1.Time initContainerStatuses=10:[]ContainerStatus "
        "containerStatuses=8:[]ContainerStatus qosClass=9:s "
        "ephemeralContainerStatuses=13:[]ContainerStatus resize=14:s "
        "resourceClaimStatuses=15:[]PodResourceClaimStatus"
    ),
    "core.v1.PodStatusResult": "metadata=1:meta.v1.ObjectMeta status=2:PodStatus",
    "core.v1.PodTemplate": "metadata=1:meta.v1.ObjectMeta template=2:PodTemplateSpec",
    "core.v1.PodTemplateList": "metadata=1:meta.v1.ListMeta items=2!:[]PodTemplate",
    "core.v1.PodTemplateSpec": "metadata=1:meta.v1.ObjectMeta spec=2:PodSpec",
    "core.v1.PortStatus": "port=1!:i32 protocol=2!:s error=3*:s",
    "core.v1.PortworxVolumeSource": "volumeID=1!:s fsType=2:s readOnly=3:b",
    "core.v1.PreferredSchedulingTerm": "weight=1!:i32 preference=2!:NodeSelectorTerm",
    "core.v1.Probe": (
        "...=1:ProbeHandler initialDelaySeconds=2:i32 timeoutSeconds=3:i32 periodSeconds=4:i32 "
        "successThreshold=5:i32 failureThreshold=6:i32 terminationGracePeriodSeconds=7*:i64"
    ),
    "core.v1.ProbeHandler": (
        "exec=1*:ExecAction httpGet=2*:HTTPGetAction tcpSocket=3*:TCPSocketAction "
        "grpc=4*:GRPCAction"
    ),
    "core.v1.ProjectedVolumeSource": "sources=1!:[]VolumeProjection defaultMode=2*:i32",
    "core.v1.QuobyteVolumeSource": "registry=1!:s volume=2!:s readOnly=3:b user=4:s group=5:s tenant=6:s",
    "core.v1.RBDPersistentVolumeSource": (
        "monitors=1!:[]s image=2!:s fsType=3:s pool=4:s user=5:s keyring=6:s "
        "secretRef=7*:SecretReference readOnly=8:b"
    ),
    "core.v1.RBDVolumeSource": (
        "monitors=1!:[]s image=2!:s fsType=3:s pool=4:s user=5:s keyring=6:s "
        "secretRef=7*:LocalObjectReference readOnly=8:b"
    ),
    "core.v1.RangeAllocation": "metadata=1:meta.v1.ObjectMeta range=2!:s data=3!:y",
    "core.v1.ReplicationController": (
        "metadata=1:meta.v1.ObjectMeta spec=2:ReplicationControllerSpec "
        "status=3:ReplicationControllerStatus"
    ),
    "core.v1.ReplicationControllerCondition": "type=1!:s status=2!:s lastTransitionTime=3:meta.v1.Time reason=4:s message=5:s",
    "core.v1.ReplicationControllerList": "metadata=1:meta.v1.ListMeta items=2!:[]ReplicationController",
    "core.v1.ReplicationControllerSpec": "replicas=1*:i32 minReadySeconds=4:i32 selector=2:{}s template=3*:PodTemplateSpec",
    "core.v1.ReplicationControllerStatus": (
        "replicas=1!:i32 fullyLabeledReplicas=2:i32 readyReplicas=4:i32 availableReplicas=5:i32 "
        "observedGeneration=3:i64 conditions=6:[]ReplicationControllerCondition"
    ),
    "core.v1.ResourceClaim": "name=1!:s request=2:s",
    "core.v1.ResourceFieldSelector": "containerName=1:s resource=2!:s divisor=3:resource.Quantity",
    "core.v1.ResourceHealth": "resourceID=1!:s health=2:s",
    "core.v1.ResourceQuota": "metadata=1:meta.v1.ObjectMeta spec=2:ResourceQuotaSpec status=3:ResourceQuotaStatus",
    "core.v1.ResourceQuotaList": "metadata=1:meta.v1.ListMeta items=2!:[]ResourceQuota",
    "core.v1.ResourceQuotaSpec": "hard=1:{}resource.Quantity scopes=2:[]s scopeSelector=3*:ScopeSelector",
    "core.v1.ResourceQuotaStatus": "hard=1:{}resource.Quantity used=2:{}resource.Quantity",
    "core.v1.ResourceRequirements": "limits=1:{}resource.Quantity requests=2:{}resource.Quantity claims=3:[]ResourceClaim",
    "core.v1.ResourceStatus": "name=1!:s resources=2:[]ResourceHealth",
    "core.v1.SELinuxOptions": "user=1:s role=2:s type=3:s level=4:s",
    "core.v1.ScaleIOPersistentVolumeSource": (
        "gateway=1!:s system=2!:s secretRef=3*!:SecretReference sslEnabled=4:b protectionDomain=5:s "
        "storagePool=6:s storageMode=7:s volumeName=8:s fsType=9:s readOnly=10:b"
    ),
    "core.v1.ScaleIOVolumeSource": (
        "gateway=1!:s system=2!:s secretRef=3*!:LocalObjectReference sslEnabled=4:b "
        "protectionDomain=5:s storagePool=6:s storageMode=7:s volumeName=8:s fsType=9:s "
        "readOnly=10:b"
    ),
    "core.v1.ScopeSelector": "matchExpressions=1:[]ScopedResourceSelectorRequirement",
    "core.v1.ScopedResourceSelectorRequirement": "scopeName=1!:s operator=2!:s values=3:[]s",
    "core.v1.SeccompProfile": "type=1!:s localhostProfile=2*:s",
    "core.v1.Secret": "metadata=1:meta.v1.ObjectMeta immutable=5*:b data=2:{}y stringData=4:{}s type=3:s",
    "core.v1.SecretEnvSource": "...=1:LocalObjectReference optional=2*:b",
    "core.v1.SecretKeySelector": "...=1:LocalObjectReference key=2!:s optional=3*:b",
    "core.v1.SecretList": "metadata=1:meta.v1.ListMeta items=2!:[]Secret",
    "core.v1.SecretProjection": "...=1:LocalObjectReference items=2:[]KeyToPath optional=4*:b",
    "core.v1.SecretReference": "name=1:s namespace=2:s",
    "core.v1.SecretVolumeSource": "secretName=1:s items=2:[]KeyToPath defaultMode=3*:i32 optional=4*:b",
    "core.v1.SecurityContext": (
        "capabilities=1*:Capabilities privileged=2*:b seLinuxOptions=3*:SELinuxOptions "
        "windowsOptions=10*:WindowsSecurityContextOptions runAsUser=4*:i64 runAsGroup=8*:i64 "
        "runAsNonRoot=5*:b readOnlyRootFilesystem=6*:b allowPrivilegeEscalation=7*:b procMount=9*:s "
        "seccompProfile=11*:SeccompProfile appArmorProfile=12*:AppArmorProfile"
    ),
    "core.v1.SerializedReference": "reference=1:ObjectReference",
    "core.v1.Service": "metadata=1:meta.v1.ObjectMeta spec=2:ServiceSpec status=3:ServiceStatus",
    "core.v1.ServiceAccount": (
        "metadata=1:meta.v1.ObjectMeta secrets=2:[]ObjectReference "
        "imagePullSecrets=3:[]LocalObjectReference automountServiceAccountToken=4*:b"
    ),
    "core.v1.ServiceAccountList": "metadata=1:meta.v1.ListMeta items=2!:[]ServiceAccount",
    "core.v1.ServiceAccountTokenProjection": "audience=1:s expirationSeconds=2*:i64 path=3!:s",
    "core.v1.ServiceList": "metadata=1:meta.v1.ListMeta items=2!:[]Service",
    "core.v1.ServicePort": (
        "name=1:s protocol=2:s appProtocol=6*:s port=3!:i32 targetPort=4:intstr.IntOrString "
        "nodePort=5:i32"
    ),
    "core.v1.ServiceProxyOptions": "path=1:s",
    "core.v1.ServiceSpec": (
        "ports=1:[]ServicePort selector=2:{}s clusterIP=3:s clusterIPs=18:[]s type=4:s "
        "externalIPs=5:[]s sessionAffinity=7:s loadBalancerIP=8:s loadBalancerSourceRanges=9:[]s "
        "externalName=10:s externalTrafficPolicy=11:s healthCheckNodePort=12:i32 "
        "publishNotReadyAddresses=13:b sessionAffinityConfig=14*:SessionAffinityConfig "
        "ipFamilies=19:[]s ipFamilyPolicy=17*:s allocateLoadBalancerNodePorts=20*:b "
        "loadBalancerClass=21*:s internalTrafficPolicy=22*:s trafficDistribution=23*:s"
    ),
    "core.v1.ServiceStatus": "loadBalancer=1:LoadBalancerStatus conditions=2:[]meta.v1.Condition",
    "core.v1.SessionAffinityConfig": "clientIP=1*:ClientIPConfig",
    "core.v1.SleepAction": "seconds=1!:i64",
    "core.v1.StorageOSPersistentVolumeSource": (
        "volumeName=1:s volumeNamespace=2:s "
        "fsType=3:s readOnly=4:b secretRef=5*:ObjectReference"
    ),
    "core.v1.StorageOSVolumeSource": (
        "volumeName=1:s volumeNamespace=2:s fsType=3:s readOnly=4:b "
        "secretRef=5*:LocalObjectReference"
    ),
    "core.v1.Sysctl": "name=1!:s value=2!:s",
    "core.v1.TCPSocketAction": "port=1!:intstr.IntOrString host=2:s",
    "core.v1.Taint": "key=1!:s value=2:s effect=3!:s timeAdded=4*:meta.v1.Time",
    "core.v1.Toleration": "key=1:s operator=2:s value=3:s effect=4:s tolerationSeconds=5*:i64",
    "core.v1.TopologySpreadConstraint": (
        "maxSkew=1!:i32 topologyKey=2!:s whenUnsatisfiable=3!:s "
        "labelSelector=4*:meta.v1.LabelSelector minDomains=5*:i32 nodeAffinityPolicy=6*:s "
        "nodeTaintsPolicy=7*:s matchLabelKeys=8:[]s"
    ),
    "core.v1.TypedLocalObjectReference": "apiGroup=1*!:s kind=2!:s name=3!:s",
    "core.v1.TypedObjectReference": "apiGroup=1*!:s kind=2!:s name=3!:s namespace=4*:s",
    "core.v1.Volume": "name=1!:s ...=2:VolumeSource",
    "core.v1.VolumeDevice": "name=1!:s devicePath=2!:s",
    "core.v1.VolumeMount": (
        "name=1!:s readOnly=2:b recursiveReadOnly=7*:s mountPath=3!:s subPath=4:s "
        "mountPropagation=5*:s subPathExpr=6:s"
    ),
    "core.v1.VolumeMountStatus": "name=1!:s mountPath=2!:s readOnly=3:b recursiveReadOnly=4*:s",
    "core.v1.VolumeNodeAffinity": "required=1*:NodeSelector",
    "core.v1.VolumeProjection": (
        "secret=1*:SecretProjection downwardAPI=2*:DownwardAPIProjection "
        "configMap=3*:ConfigMapProjection serviceAccountToken=4*:ServiceAccountTokenProjection "
        "clusterTrustBundle=5*:ClusterTrustBundleProjection"
    ),
    "core.v1.VolumeResourceRequirements": "limits=1:{}resource.Quantity requests=2:{}resource.Quantity",
    "core.v1.VolumeSource": (
        "hostPath=1*:HostPathVolumeSource emptyDir=2*:EmptyDirVolumeSource "
        "gcePersistentDisk=3*:GCEPersistentDiskVolumeSource "
        "awsElasticBlockStore=4*:AWSElasticBlockStoreVolumeSource gitRepo=5*:GitRepoVolumeSource "
        "secret=6*:SecretVolumeSource nfs=7*:NFSVolumeSource iscsi=8*:ISCSIVolumeSource "
        "glusterfs=9*:GlusterfsVolumeSource "
        "persistentVolumeClaim=10*:PersistentVolumeClaimVolumeSource rbd=11*:RBDVolumeSource "
        "flexVolume=12*:FlexVolumeSource cinder=13*:CinderVolumeSource "
        "cephfs=14*:CephFSVolumeSource flocker=15*:FlockerVolumeSource "
        "downwardAPI=16*:DownwardAPIVolumeSource fc=17*:FCVolumeSource "
        "azureFile=18*:AzureFileVolumeSource configMap=19*:ConfigMapVolumeSource "
        "vsphereVolume=20*:VsphereVirtualDiskVolumeSource quobyte=21*:QuobyteVolumeSource "
        "azureDisk=22*:AzureDiskVolumeSource "
        "photonPersistentDisk=23*:PhotonPersistentDiskVolumeSource "
        "projected=26*:ProjectedVolumeSource portworxVolume=24*:PortworxVolumeSource "
        "scaleIO=25*:ScaleIOVolumeSource storageos=27*:StorageOSVolumeSource "
        "csi=28*:CSIVolumeSource ephemeral=29*:EphemeralVolumeSource image=30*:ImageVolumeSource"
    ),
    "core.v1.VsphereVirtualDiskVolumeSource": "volumePath=1!:s fsType=2:s storagePolicyName=3:s storagePolicyID=4:s",
    "core.v1.WeightedPodAffinityTerm": "weight=1!:i32 podAffinityTerm=2!:PodAffinityTerm",
    "core.v1.WindowsSecurityContextOptions": (
        "gmsaCredentialSpecName=1*:s "
        "gmsaCredentialSpec=2*:s runAsUserName=3*:s hostProcess=4*:b"
    ),
    "discovery.v1.Endpoint": (
        "addresses=1!:[]s conditions=2:EndpointConditions hostname=3*:s "
        "targetRef=4*:core.v1.ObjectReference deprecatedTopology=5:{}s nodeName=6*:s zone=7*:s "
        "hints=8*:EndpointHints"
    ),
    "discovery.v1.EndpointConditions": "ready=1*:b serving=2*:b terminating=3*:b",
    "discovery.v1.EndpointHints": "forZones=1:[]ForZone forNodes=2:[]ForNode",
    "discovery.v1.EndpointPort": "name=1*:s protocol=2*:s port=3*:i32 appProtocol=4*:s",
    "discovery.v1.EndpointSlice": (
        "metadata=1:meta.v1.ObjectMeta addressType=4!:s endpoints=2!:[]Endpoint "
        "ports=3!:[]EndpointPort"
    ),
    "discovery.v1.EndpointSliceList": "metadata=1:meta.v1.ListMeta items=2!:[]EndpointSlice",
    "discovery.v1.ForNode": "name=1!:s",
    "discovery.v1.ForZone": "name=1!:s",
    "events.v1.Event": (
        "metadata=1!:meta.v1.ObjectMeta eventTime=2!:meta.v1.MicroTime series=3*:EventSeries "
        "reportingController=4:s reportingInstance=5:s action=6:s reason=7:s "
        "regarding=8:core.v1.ObjectReference related=9*:core.v1.ObjectReference note=10:s type=11:s "
        "deprecatedSource=12:core.v1.EventSource deprecatedFirstTimestamp=13:meta.v1.Time "
        "deprecatedLastTimestamp=14:meta.v1.Time deprecatedCount=15:i32"
    ),
    "events.v1.EventList": "metadata=1:meta.v1.ListMeta items=2!:[]Event",
    "events.v1.EventSeries": "count=1!:i32 lastObservedTime=2!:meta.v1.MicroTime",
    "meta.v1.APIGroup": (
        "name=1!:s versions=2!:[]GroupVersionForDiscovery "
        "preferredVersion=3:GroupVersionForDiscovery "
        "serverAddressByClientCIDRs=4:[]ServerAddressByClientCIDR"
    ),
    "meta.v1.APIGroupList": "groups=1!:[]APIGroup",
    "meta.v1.APIResource": (
        "name=1!:s singularName=6!:s namespaced=2!:b group=8:s version=9:s kind=3!:s verbs=4!:Verbs "
        "shortNames=5:[]s categories=7:[]s storageVersionHash=10:s"
    ),
    "meta.v1.APIResourceList": "groupVersion=1!:s resources=2!:[]APIResource",
    "meta.v1.APIVersions": "versions=1!:[]s serverAddressByClientCIDRs=2!:[]ServerAddressByClientCIDR",
    "meta.v1.ApplyOptions": "dryRun=1:[]s force=2!:b fieldManager=3!:s",
    "meta.v1.Condition": (
        "type=1!:s status=2!:s observedGeneration=3:i64 lastTransitionTime=4!:Time reason=5!:s "
        "message=6!:s"
    ),
    "meta.v1.CreateOptions": "dryRun=1:[]s fieldManager=3:s fieldValidation=4:s",
    "meta.v1.DeleteOptions": (
        "gracePeriodSeconds=1*:i64 preconditions=2*:Preconditions orphanDependents=3*:b "
        "propagationPolicy=4*:s dryRun=5:[]s ignoreStoreReadErrorWithClusterBreakingPotential=6*:b"
    ),
    "meta.v1.FieldSelectorRequirement": "key=1!:s operator=2!:s values=3:[]s",
    "meta.v1.GetOptions": "resourceVersion=1:s",
    "meta.v1.GroupVersionForDiscovery": "groupVersion=1!:s version=2!:s",
    "meta.v1.LabelSelector": "matchLabels=1:{}s matchExpressions=2:[]LabelSelectorRequirement",
    "meta.v1.LabelSelectorRequirement": "key=1!:s operator=2!:s values=3:[]s",
    "meta.v1.List": "metadata=1:ListMeta items=2!:[]runtime.RawExtension",
    "meta.v1.ListMeta": "selfLink=1:s resourceVersion=2:s continue=3:s remainingItemCount=4*:i64",
    "meta.v1.ListOptions": (
        "labelSelector=1:s fieldSelector=2:s watch=3:b allowWatchBookmarks=9:b resourceVersion=4:s "
        "resourceVersionMatch=10:s timeoutSeconds=5*:i64 limit=7:i64 continue=8:s "
        "sendInitialEvents=11*:b"
    ),
    "meta.v1.ManagedFieldsEntry": (
        "manager=1:s operation=2:s apiVersion=3:s time=4*:Time fieldsType=6:s fieldsV1=7*:FieldsV1 "
        "subresource=8:s"
    ),
    "meta.v1.ObjectMeta": (
        "name=1:s generateName=2:s namespace=3:s selfLink=4:s uid=5:s resourceVersion=6:s "
        "generation=7:i64 creationTimestamp=8:Time deletionTimestamp=9*:Time "
        "deletionGracePeriodSeconds=10*:i64 labels=11:{}s annotations=12:{}s "
        "ownerReferences=13:[]OwnerReference finalizers=14:[]s "
        "managedFields=17:[]ManagedFieldsEntry"
    ),
    "meta.v1.OwnerReference": "apiVersion=5!:s kind=1!:s name=3!:s uid=4!:s controller=6*:b blockOwnerDeletion=7*:b",
    "meta.v1.PartialObjectMetadata": "metadata=1:ObjectMeta",
    "meta.v1.PartialObjectMetadataList": "metadata=1:ListMeta items=2!:[]PartialObjectMetadata",
    "meta.v1.PatchOptions": "dryRun=1:[]s force=2*:b fieldManager=3:s fieldValidation=4:s",
    "meta.v1.Preconditions": "uid=1*:s resourceVersion=2*:s",
    "meta.v1.ServerAddressByClientCIDR": "clientCIDR=1!:s serverAddress=2!:s",
    "meta.v1.Status": "metadata=1:ListMeta status=2:s message=3:s reason=4:s details=5*:StatusDetails code=6:i32",
    "meta.v1.StatusCause": "reason=1:s message=2:s field=3:s",
    "meta.v1.StatusDetails": "name=1:s group=2:s kind=3:s uid=6:s causes=4:[]StatusCause retryAfterSeconds=5:i32",
    "meta.v1.TableOptions": "includeObject=1:s",
    "meta.v1.UpdateOptions": "dryRun=1:[]s fieldManager=2:s fieldValidation=3:s",
    "meta.v1.Verbs": "@items=1:[]s",
    "networking.v1.IPBlock": "cidr=1!:s except=2:[]s",
    "networking.v1.NetworkPolicy": "metadata=1:meta.v1.ObjectMeta spec=2:NetworkPolicySpec",
    "networking.v1.NetworkPolicyEgressRule": "ports=1:[]NetworkPolicyPort to=2:[]NetworkPolicyPeer",
    "networking.v1.NetworkPolicyIngressRule": "ports=1:[]NetworkPolicyPort from=2:[]NetworkPolicyPeer",
    "networking.v1.NetworkPolicyList": "metadata=1:meta.v1.ListMeta items=2!:[]NetworkPolicy",
    "networking.v1.NetworkPolicyPeer": (
        "podSelector=1*:meta.v1.LabelSelector namespaceSelector=2*:meta.v1.LabelSelector ipBlock=3*:IPBlock"
    ),
    "networking.v1.NetworkPolicyPort": "protocol=1*:s port=2*:intstr.IntOrString endPort=3*:i32",
    "networking.v1.NetworkPolicySpec": (
        "podSelector=1!:meta.v1.LabelSelector ingress=2:[]NetworkPolicyIngressRule "
        "egress=3:[]NetworkPolicyEgressRule policyTypes=4:[]s"
    ),
    "networking.v1.HTTPIngressPath": "path=1:s pathType=3*!:s backend=2!:IngressBackend",
    "networking.v1.HTTPIngressRuleValue": "paths=1!:[]HTTPIngressPath",
    "networking.v1.Ingress": "metadata=1:meta.v1.ObjectMeta spec=2:IngressSpec status=3:IngressStatus",
    "networking.v1.IngressBackend": "service=4*:IngressServiceBackend resource=3*:core.v1.TypedLocalObjectReference",
    "networking.v1.IngressClass": "metadata=1:meta.v1.ObjectMeta spec=2:IngressClassSpec",
    "networking.v1.IngressClassList": "metadata=1:meta.v1.ListMeta items=2!:[]IngressClass",
    "networking.v1.IngressClassParametersReference": (
        "apiGroup=1*:s kind=2!:s name=3!:s scope=4*:s namespace=5*:s"
    ),
    "networking.v1.IngressClassSpec": "controller=1:s parameters=2*:IngressClassParametersReference",
    "networking.v1.IngressList": "metadata=1:meta.v1.ListMeta items=2!:[]Ingress",
    "networking.v1.IngressLoadBalancerIngress": "ip=1:s hostname=2:s ports=4:[]IngressPortStatus",
    "networking.v1.IngressLoadBalancerStatus": "ingress=1:[]IngressLoadBalancerIngress",
    "networking.v1.IngressPortStatus": "port=1!:i32 protocol=2!:s error=3*:s",
    "networking.v1.IngressRule": "host=1:s ...=2:IngressRuleValue",
    "networking.v1.IngressRuleValue": "http=1*:HTTPIngressRuleValue",
    "networking.v1.IngressServiceBackend": "name=1!:s port=2:ServiceBackendPort",
    "networking.v1.IngressSpec": (
        "ingressClassName=4*:s defaultBackend=1*:IngressBackend tls=2:[]IngressTLS rules=3:[]IngressRule"
    ),
    "networking.v1.IngressStatus": "loadBalancer=1:IngressLoadBalancerStatus",
    "networking.v1.IngressTLS": "hosts=1:[]s secretName=2:s",
    "networking.v1.ServiceBackendPort": "name=1:s number=2:i32",
    "policy.v1.Eviction": "metadata=1:meta.v1.ObjectMeta deleteOptions=2*:meta.v1.DeleteOptions",
    "policy.v1.PodDisruptionBudget": (
        "metadata=1:meta.v1.ObjectMeta spec=2:PodDisruptionBudgetSpec "
        "status=3:PodDisruptionBudgetStatus"
    ),
    "policy.v1.PodDisruptionBudgetList": "metadata=1:meta.v1.ListMeta items=2!:[]PodDisruptionBudget",
    "policy.v1.PodDisruptionBudgetSpec": (
        "minAvailable=1*:intstr.IntOrString selector=2*:meta.v1.LabelSelector "
        "maxUnavailable=3*:intstr.IntOrString unhealthyPodEvictionPolicy=4*:s"
    ),
    "policy.v1.PodDisruptionBudgetStatus": (
        "observedGeneration=1:i64 disruptedPods=2:{}meta.v1.Time disruptionsAllowed=3!:i32 "
        "currentHealthy=4!:i32 desiredHealthy=5!:i32 expectedPods=6!:i32 "
        "conditions=7:[]meta.v1.Condition"
    ),
    "rbac.v1.AggregationRule": "clusterRoleSelectors=1:[]meta.v1.LabelSelector",
    "rbac.v1.ClusterRole": "metadata=1:meta.v1.ObjectMeta rules=2!:[]PolicyRule aggregationRule=3*:AggregationRule",
    "rbac.v1.ClusterRoleBinding": "metadata=1:meta.v1.ObjectMeta subjects=2:[]Subject roleRef=3!:RoleRef",
    "rbac.v1.ClusterRoleBindingList": "metadata=1:meta.v1.ListMeta items=2!:[]ClusterRoleBinding",
    "rbac.v1.ClusterRoleList": "metadata=1:meta.v1.ListMeta items=2!:[]ClusterRole",
    "rbac.v1.PolicyRule": (
        "verbs=1!:[]s apiGroups=2:[]s resources=3:[]s resourceNames=4:[]s nonResourceURLs=5:[]s"
    ),
    "rbac.v1.Role": "metadata=1:meta.v1.ObjectMeta rules=2!:[]PolicyRule",
    "rbac.v1.RoleBinding": "metadata=1:meta.v1.ObjectMeta subjects=2:[]Subject roleRef=3!:RoleRef",
    "rbac.v1.RoleBindingList": "metadata=1:meta.v1.ListMeta items=2!:[]RoleBinding",
    "rbac.v1.RoleList": "metadata=1:meta.v1.ListMeta items=2!:[]Role",
    "rbac.v1.RoleRef": "apiGroup=1!:s kind=2!:s name=3!:s",
    "rbac.v1.Subject": "kind=1!:s apiGroup=2:s name=3!:s namespace=4:s",
    "scheduling.v1.PriorityClass": (
        "metadata=1:meta.v1.ObjectMeta value=2!:i32 globalDefault=3:b description=4:s preemptionPolicy=5*:s"
    ),
    "scheduling.v1.PriorityClassList": "metadata=1:meta.v1.ListMeta items=2!:[]PriorityClass",
    "storage.v1.StorageClass": (
        "metadata=1:meta.v1.ObjectMeta provisioner=2!:s parameters=3:{}s reclaimPolicy=4*:s "
        "mountOptions=5:[]s allowVolumeExpansion=6*:b volumeBindingMode=7*:s "
        "allowedTopologies=8:[]core.v1.TopologySelectorTerm"
    ),
    "storage.v1.StorageClassList": "metadata=1:meta.v1.ListMeta items=2!:[]StorageClass",
    "core.v1.TopologySelectorLabelRequirement": "key=1!:s values=2!:[]s",
    "core.v1.TopologySelectorTerm": "matchLabelExpressions=1:[]TopologySelectorLabelRequirement",
}

KINDS: dict[tuple[str, str], str] = {
    ("*", "APIGroup"): "meta.v1.APIGroup",
    ("*", "APIGroupList"): "meta.v1.APIGroupList",
    ("*", "APIResourceList"): "meta.v1.APIResourceList",
    ("*", "APIVersions"): "meta.v1.APIVersions",
    ("*", "ApplyOptions"): "meta.v1.ApplyOptions",
    ("*", "CreateOptions"): "meta.v1.CreateOptions",
    ("*", "DeleteOptions"): "meta.v1.DeleteOptions",
    ("*", "GetOptions"): "meta.v1.GetOptions",
    ("*", "List"): "meta.v1.List",
    ("*", "ListOptions"): "meta.v1.ListOptions",
    ("*", "PartialObjectMetadata"): "meta.v1.PartialObjectMetadata",
    ("*", "PartialObjectMetadataList"): "meta.v1.PartialObjectMetadataList",
    ("*", "PatchOptions"): "meta.v1.PatchOptions",
    ("*", "Status"): "meta.v1.Status",
    ("*", "TableOptions"): "meta.v1.TableOptions",
    ("*", "UpdateOptions"): "meta.v1.UpdateOptions",
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"):
        "admissionregistration.v1.MutatingWebhookConfiguration",
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfigurationList"):
        "admissionregistration.v1.MutatingWebhookConfigurationList",
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"):
        "admissionregistration.v1.ValidatingWebhookConfiguration",
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfigurationList"):
        "admissionregistration.v1.ValidatingWebhookConfigurationList",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"):
        "admissionregistration.v1.ValidatingAdmissionPolicy",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyList"):
        "admissionregistration.v1.ValidatingAdmissionPolicyList",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
        "admissionregistration.v1.ValidatingAdmissionPolicyBinding",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBindingList"):
        "admissionregistration.v1.ValidatingAdmissionPolicyBindingList",
    ("apps/v1", "ControllerRevision"): "apps.v1.ControllerRevision",
    ("apps/v1", "ControllerRevisionList"): "apps.v1.ControllerRevisionList",
    ("apps/v1", "DaemonSet"): "apps.v1.DaemonSet",
    ("apps/v1", "DaemonSetList"): "apps.v1.DaemonSetList",
    ("apps/v1", "Deployment"): "apps.v1.Deployment",
    ("apps/v1", "DeploymentList"): "apps.v1.DeploymentList",
    ("apps/v1", "ReplicaSet"): "apps.v1.ReplicaSet",
    ("apiregistration.k8s.io/v1", "APIService"): "apiregistration.v1.APIService",
    ("apiregistration.k8s.io/v1", "APIServiceList"): "apiregistration.v1.APIServiceList",
    ("apps/v1", "ReplicaSetList"): "apps.v1.ReplicaSetList",
    ("apps/v1", "StatefulSet"): "apps.v1.StatefulSet",
    ("apps/v1", "StatefulSetList"): "apps.v1.StatefulSetList",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "authentication.v1.SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "authentication.v1.TokenRequest",
    ("authentication.k8s.io/v1", "TokenReview"): "authentication.v1.TokenReview",
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): "authorization.v1.LocalSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "authorization.v1.SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "authorization.v1.SelfSubjectRulesReview",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "authorization.v1.SubjectAccessReview",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "autoscaling.v1.HorizontalPodAutoscaler",
    ("autoscaling/v1", "HorizontalPodAutoscalerList"): "autoscaling.v1.HorizontalPodAutoscalerList",
    ("autoscaling/v1", "Scale"): "autoscaling.v1.Scale",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "autoscaling.v2.HorizontalPodAutoscaler",
    ("autoscaling/v2", "HorizontalPodAutoscalerList"): "autoscaling.v2.HorizontalPodAutoscalerList",
    ("batch/v1", "CronJob"): "batch.v1.CronJob",
    ("batch/v1", "CronJobList"): "batch.v1.CronJobList",
    ("batch/v1", "Job"): "batch.v1.Job",
    ("batch/v1", "JobList"): "batch.v1.JobList",
    ("coordination.k8s.io/v1", "Lease"): "coordination.v1.Lease",
    ("metrics.k8s.io/v1beta1", "NodeMetrics"): "metrics.v1beta1.NodeMetrics",
    ("metrics.k8s.io/v1beta1", "NodeMetricsList"): "metrics.v1beta1.NodeMetricsList",
    ("metrics.k8s.io/v1beta1", "PodMetrics"): "metrics.v1beta1.PodMetrics",
    ("metrics.k8s.io/v1beta1", "PodMetricsList"): "metrics.v1beta1.PodMetricsList",
    ("coordination.k8s.io/v1", "LeaseList"): "coordination.v1.LeaseList",
    ("discovery.k8s.io/v1", "EndpointSlice"): "discovery.v1.EndpointSlice",
    ("discovery.k8s.io/v1", "EndpointSliceList"): "discovery.v1.EndpointSliceList",
    ("events.k8s.io/v1", "Event"): "events.v1.Event",
    ("events.k8s.io/v1", "EventList"): "events.v1.EventList",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networking.v1.NetworkPolicy",
    ("networking.k8s.io/v1", "NetworkPolicyList"): "networking.v1.NetworkPolicyList",
    ("networking.k8s.io/v1", "Ingress"): "networking.v1.Ingress",
    ("networking.k8s.io/v1", "IngressClass"): "networking.v1.IngressClass",
    ("networking.k8s.io/v1", "IngressClassList"): "networking.v1.IngressClassList",
    ("networking.k8s.io/v1", "IngressList"): "networking.v1.IngressList",
    ("policy/v1", "Eviction"): "policy.v1.Eviction",
    ("policy/v1", "PodDisruptionBudget"): "policy.v1.PodDisruptionBudget",
    ("policy/v1", "PodDisruptionBudgetList"): "policy.v1.PodDisruptionBudgetList",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.v1.ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBindingList"): "rbac.v1.ClusterRoleBindingList",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleList"): "rbac.v1.ClusterRoleList",
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.v1.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "RoleBindingList"): "rbac.v1.RoleBindingList",
    ("rbac.authorization.k8s.io/v1", "RoleList"): "rbac.v1.RoleList",
    ("scheduling.k8s.io/v1", "PriorityClass"): "scheduling.v1.PriorityClass",
    ("scheduling.k8s.io/v1", "PriorityClassList"): "scheduling.v1.PriorityClassList",
    ("storage.k8s.io/v1", "StorageClass"): "storage.v1.StorageClass",
    ("storage.k8s.io/v1", "StorageClassList"): "storage.v1.StorageClassList",
    ("v1", "Binding"): "core.v1.Binding",
    ("v1", "ComponentStatus"): "core.v1.ComponentStatus",
    ("v1", "ComponentStatusList"): "core.v1.ComponentStatusList",
    ("v1", "ConfigMap"): "core.v1.ConfigMap",
    ("v1", "ConfigMapList"): "core.v1.ConfigMapList",
    ("v1", "Endpoints"): "core.v1.Endpoints",
    ("v1", "EndpointsList"): "core.v1.EndpointsList",
    ("v1", "Event"): "core.v1.Event",
    ("v1", "EventList"): "core.v1.EventList",
    ("v1", "LimitRange"): "core.v1.LimitRange",
    ("v1", "LimitRangeList"): "core.v1.LimitRangeList",
    ("v1", "Namespace"): "core.v1.Namespace",
    ("v1", "NamespaceList"): "core.v1.NamespaceList",
    ("v1", "Node"): "core.v1.Node",
    ("v1", "NodeList"): "core.v1.NodeList",
    ("v1", "NodeProxyOptions"): "core.v1.NodeProxyOptions",
    ("v1", "PersistentVolume"): "core.v1.PersistentVolume",
    ("v1", "PersistentVolumeClaim"): "core.v1.PersistentVolumeClaim",
    ("v1", "PersistentVolumeClaimList"): "core.v1.PersistentVolumeClaimList",
    ("v1", "PersistentVolumeList"): "core.v1.PersistentVolumeList",
    ("v1", "Pod"): "core.v1.Pod",
    ("v1", "PodAttachOptions"): "core.v1.PodAttachOptions",
    ("v1", "PodExecOptions"): "core.v1.PodExecOptions",
    ("v1", "PodList"): "core.v1.PodList",
    ("v1", "PodLogOptions"): "core.v1.PodLogOptions",
    ("v1", "PodPortForwardOptions"): "core.v1.PodPortForwardOptions",
    ("v1", "PodProxyOptions"): "core.v1.PodProxyOptions",
    ("v1", "PodStatusResult"): "core.v1.PodStatusResult",
    ("v1", "PodTemplate"): "core.v1.PodTemplate",
    ("v1", "PodTemplateList"): "core.v1.PodTemplateList",
    ("v1", "RangeAllocation"): "core.v1.RangeAllocation",
    ("v1", "ReplicationController"): "core.v1.ReplicationController",
    ("v1", "ReplicationControllerList"): "core.v1.ReplicationControllerList",
    ("v1", "ResourceQuota"): "core.v1.ResourceQuota",
    ("v1", "ResourceQuotaList"): "core.v1.ResourceQuotaList",
    ("v1", "Secret"): "core.v1.Secret",
    ("v1", "SecretList"): "core.v1.SecretList",
    ("v1", "SerializedReference"): "core.v1.SerializedReference",
    ("v1", "Service"): "core.v1.Service",
    ("v1", "ServiceAccount"): "core.v1.ServiceAccount",
    ("v1", "ServiceAccountList"): "core.v1.ServiceAccountList",
    ("v1", "ServiceList"): "core.v1.ServiceList",
    ("v1", "ServiceProxyOptions"): "core.v1.ServiceProxyOptions",
}

_KIND_MESSAGES = frozenset(KINDS.values())
