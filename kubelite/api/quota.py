"""ResourceQuota arithmetic shared by the quota controller and quota admission.

Pure functions over plain dicts: quantities that remember their format (so sums print as
upstream's ``resource.Quantity`` prints them: ``1536Mi``, ``1500m``, ``2k``), resource
lists, what one object uses (the evaluators: pods, services, PVCs and plain object
counts), and whether a quota's scopes cover a pod.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

Obj = dict[str, Any]

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_BINARY_BY_POWER = {v: k for k, v in _BINARY.items()}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}

BINARY_SI, DECIMAL_SI, DECIMAL_EXPONENT = "BinarySI", "DecimalSI", "DecimalExponent"


@dataclasses.dataclass(frozen=True)
class Qty:
    """A quantity's exact value and the format it was written in (kept through sums)."""

    value: Fraction
    fmt: str = DECIMAL_SI

    def __add__(self, other: Qty) -> Qty:
        # As Quantity.Add: the sum keeps the left operand's format unless that one is zero.
        return Qty(self.value + other.value, other.fmt if self.value == 0 else self.fmt)

    def __sub__(self, other: Qty) -> Qty:
        return Qty(self.value - other.value, other.fmt if self.value == 0 else self.fmt)

    def __str__(self) -> str:
        return _canonical(self.value, self.fmt)


ZERO = Qty(Fraction(0))


def parse(q: str | int | float | Qty | None) -> Qty:
    """A quantity string (or number) as a Qty; ValueError when malformed."""
    if isinstance(q, Qty):
        return q
    if q is None or q == "":
        return ZERO
    if isinstance(q, bool):
        raise ValueError(f"not a quantity: {q!r}")
    if isinstance(q, int):
        return Qty(Fraction(q))
    if isinstance(q, float):
        return Qty(Fraction(str(q)))
    s = str(q).strip()
    for suf, power in _BINARY.items():
        if s.endswith(suf):
            return Qty(_number(s[:-2]) * 1024 ** power, BINARY_SI)
    if len(s) > 1 and s[-1] in "numkMGTPE":
        return Qty(_number(s[:-1]) * Fraction(10) ** _DECIMAL[s[-1]], DECIMAL_SI)
    low = s.lower()
    if "e" in low:
        mant, _, exp = low.partition("e")
        try:
            e = int(exp)
        except ValueError:
            raise ValueError(f"not a quantity: {s!r}") from None
        return Qty(_number(mant) * Fraction(10) ** e, DECIMAL_EXPONENT)
    return Qty(_number(s), DECIMAL_SI)


def _number(s: str) -> Fraction:
    if not s or s.strip("+-.") == "" or any(c not in "0123456789.+-" for c in s):
        raise ValueError(f"not a quantity: {s!r}")
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a quantity: {s!r}") from None


def _canonical(v: Fraction, fmt: str) -> str:
    """Quantity.String(): the shortest exact form in the quantity's format."""
    if v == 0:
        return "0"
    if fmt == BINARY_SI and abs(v) >= 1024 and v.denominator == 1:
        n, power = int(v), 0
        while power < 6 and n % 1024 == 0:
            n //= 1024
            power += 1
        return f"{n}{_BINARY_BY_POWER.get(power, '')}"
    # Decimal: an integer mantissa times a power of ten, rounded up to nanos.
    exp = 0
    scaled = v
    while scaled.denominator != 1 and exp > -9:
        scaled *= 10
        exp -= 1
    m = math.ceil(scaled)
    while m != 0 and m % 10 == 0:
        m //= 10
        exp += 1
    shift = exp % 3
    m *= 10 ** shift
    exp -= shift
    if fmt == DECIMAL_EXPONENT:
        return f"{m}e{exp}" if exp else str(m)
    if exp > 18:
        m *= 10 ** (exp - 18)
        exp = 18
    return f"{m}{_DECIMAL_BY_EXP[exp]}"


def format_quantity(q: str | int | float | Qty | None) -> str:
    """A quantity written as upstream writes it back (the string itself if unparsable)."""
    try:
        return str(parse(q))
    except ValueError:
        return str(q)


# --- resource lists ------------------------------------------------------------------

ResourceList = dict[str, Qty]


def to_list(raw: Mapping[str, Any] | None) -> ResourceList:
    """A JSON resource list (``{"cpu": "1"}``) as Qty values (bad entries skipped)."""
    out: ResourceList = {}
    for k, v in (raw or {}).items():
        try:
            out[k] = parse(v)
        except ValueError:
            continue
    return out


def to_json(rl: Mapping[str, Qty]) -> dict[str, str]:
    """Qty values back to canonical strings."""
    return {k: str(v) for k, v in rl.items()}


def add(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> ResourceList:
    """quota.Add: every key of either, summed."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else v
    return out


def subtract(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> ResourceList:
    """quota.Subtract: a's keys less b's (keys only in b are taken from zero)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] - v if k in out else ZERO - v
    return out


def mask(rl: Mapping[str, Qty], names: Iterable[str]) -> ResourceList:
    """Only the named keys."""
    keep = set(names)
    return {k: v for k, v in rl.items() if k in keep}


def exceeded(usage: Mapping[str, Qty], hard: Mapping[str, Qty]) -> list[str]:
    """quota.LessThanOrEqual's complaint: the keys of usage above hard (sorted)."""
    return sorted(k for k, v in usage.items() if k in hard and v.value > hard[k].value)


def pretty(rl: Mapping[str, Qty]) -> str:
    """``a=1,b=2``: upstream's prettyPrint of a resource list in key order."""
    return ",".join(f"{k}={rl[k]}" for k in sorted(rl))


# --- evaluators ----------------------------------------------------------------------

_POD_NAMES = {"pods", "count/pods", "cpu", "memory", "ephemeral-storage"}
_POD_PREFIXES = ("requests.", "limits.", "hugepages-")
_POD_CONSTRAINED = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
_SERVICE_NAMES = {"services", "count/services", "services.nodeports", "services.loadbalancers"}
_PVC_SUFFIX = ".storageclass.storage.k8s.io/"
# The names object-count quota had before count/<resource> existed.
_LEGACY_COUNTS = {"configmaps": "configmaps", "secrets": "secrets", "replicationcontrollers": "replicationcontrollers",
                  "resourcequotas": "resourcequotas", "persistentvolumeclaims": "persistentvolumeclaims"}


def count_name(group: str, plural: str) -> str:
    """``count/<resource>.<group>`` (core: ``count/<resource>``)."""
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def matches_resource(group: str, plural: str, name: str) -> bool:
    """Whether the evaluator of group/plural accounts for the quota resource ``name``."""
    if name == count_name(group, plural):
        return True
    if group:
        return False
    if plural == "pods":
        return name in _POD_NAMES or name.startswith(_POD_PREFIXES)
    if plural == "services":
        return name in _SERVICE_NAMES
    if plural == "persistentvolumeclaims":
        return name in ("persistentvolumeclaims", "requests.storage") or _PVC_SUFFIX in name
    return _LEGACY_COUNTS.get(plural) == name


def matching_resources(group: str, plural: str, names: Iterable[str]) -> list[str]:
    """The quota resource names the evaluator of group/plural accounts for (sorted)."""
    return sorted(n for n in names if matches_resource(group, plural, n))


def usage(group: str, plural: str, obj: Obj) -> ResourceList:
    """What one object uses, by quota resource name (before masking to a quota's hard)."""
    one = Qty(Fraction(1))
    out: ResourceList = {count_name(group, plural): one}
    if group:
        return out
    if plural == "pods":
        return pod_usage(obj)
    if plural == "services":
        spec = obj.get("spec") or {}
        out["services"] = one
        ports = spec.get("ports") or []
        lb = spec.get("type") == "LoadBalancer"
        out["services.loadbalancers"] = one if lb else ZERO
        if spec.get("type") == "NodePort" or (lb and spec.get("allocateLoadBalancerNodePorts") is not False):
            nodeports = len(ports)
        else:
            nodeports = sum(1 for p in ports if p.get("nodePort"))
        out["services.nodeports"] = Qty(Fraction(nodeports))
        return out
    if plural == "persistentvolumeclaims":
        spec = obj.get("spec") or {}
        storage = to_list((spec.get("resources") or {}).get("requests") or {}).get("storage", ZERO)
        out["persistentvolumeclaims"] = one
        out["requests.storage"] = storage
        sc = spec.get("storageClassName")
        if sc:
            out[f"{sc}{_PVC_SUFFIX}persistentvolumeclaims"] = one
            out[f"{sc}{_PVC_SUFFIX}requests.storage"] = storage
        return out
    legacy = _LEGACY_COUNTS.get(plural)
    if legacy:
        out[legacy] = one
    return out


def _pod_totals(pod: Obj, field: str) -> ResourceList:
    """PodRequests / PodLimits: containers summed, then the largest init container per
    resource if larger, then the pod overhead."""
    spec = pod.get("spec") or {}
    total: ResourceList = {}
    for c in spec.get("containers") or []:
        total = add(total, to_list((c.get("resources") or {}).get(field)))
    for c in spec.get("initContainers") or []:
        for k, v in to_list((c.get("resources") or {}).get(field)).items():
            if k not in total or v.value > total[k].value:
                total[k] = v
    overhead = to_list(spec.get("overhead"))
    if overhead:
        total = add(total, {k: v for k, v in overhead.items() if k in total or field == "requests"})
    return total


def compute_usage(requests: Mapping[str, Qty], limits: Mapping[str, Qty]) -> ResourceList:
    """podComputeUsageHelper: quota names for a set of requests and limits."""
    one = Qty(Fraction(1))
    out: ResourceList = {"pods": one, "count/pods": one}
    for r in ("cpu", "memory", "ephemeral-storage"):
        if r in requests:
            out[r] = requests[r]
            out[f"requests.{r}"] = requests[r]
        if r in limits:
            out[f"limits.{r}"] = limits[r]
    for k, v in requests.items():
        if k not in ("cpu", "memory", "ephemeral-storage"):
            out[f"requests.{k}"] = v
            if k.startswith("hugepages-"):
                out[k] = v
    for k, v in limits.items():
        if k not in ("cpu", "memory", "ephemeral-storage") and k.startswith("hugepages-"):
            out[f"limits.{k}"] = v
    return out


def pod_usage(pod: Obj) -> ResourceList:
    """What a pod uses; nothing once it is finished (quota no longer charges it)."""
    if not pod_counts(pod):
        return {}
    return compute_usage(_pod_totals(pod, "requests"), _pod_totals(pod, "limits"))


def pod_counts(pod: Obj) -> bool:
    """QuotaV1Pod: a pod counts until it succeeded or failed."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def missing_constraints(pod: Obj, restricted: Iterable[str]) -> str:
    """The pod evaluator's Constraints: every container must request what a quota on
    cpu/memory restricts; '' when satisfied, else upstream's ``must specify …`` text."""
    required = set(restricted) & _POD_CONSTRAINED
    if not required:
        return ""
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        have = set(compute_usage(to_list(res.get("requests")), to_list(res.get("limits"))))
        for r in required - have:
            missing.setdefault(r, set()).add(c.get("name", ""))
    if not missing:
        return ""
    return "must specify " + "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))


# --- scopes --------------------------------------------------------------------------

POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
              "CrossNamespacePodAffinity")


def scope_selectors(quota: Obj) -> list[Obj]:
    """spec.scopes (as Exists requirements) plus spec.scopeSelector's requirements."""
    spec = quota.get("spec") or {}
    out = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    out += list((spec.get("scopeSelector") or {}).get("matchExpressions") or [])
    return out


def is_best_effort(pod: Obj) -> bool:
    """QoS BestEffort: no container requests or limits cpu or memory."""
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for field in ("requests", "limits"):
            if set(res.get(field) or {}) & {"cpu", "memory"}:
                return False
    return True


def pod_matches_scope(sel: Obj, pod: Obj) -> bool:
    """podMatchesScopeFunc for one requirement."""
    spec = pod.get("spec") or {}
    scope = sel.get("scopeName")
    terminating = spec.get("activeDeadlineSeconds") is not None and int(spec["activeDeadlineSeconds"]) >= 0
    if scope == "Terminating":
        return terminating
    if scope == "NotTerminating":
        return not terminating
    if scope == "BestEffort":
        return is_best_effort(pod)
    if scope == "NotBestEffort":
        return not is_best_effort(pod)
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        op, values = sel.get("operator"), sel.get("values") or []
        if op == "Exists":
            return bool(name)
        if op == "In":
            return name in values
        if op == "NotIn":
            return name not in values
        return False  # DoesNotExist: the pod's class key is always there, as upstream's label set
    if scope == "CrossNamespacePodAffinity":
        return False
    return False


def quota_matches(quota: Obj, group: str, plural: str, obj: Obj) -> bool:
    """Whether the quota charges this object: it limits something the object's evaluator
    accounts for, and every scope covers it (only pods have scopes)."""
    hard = (quota.get("status") or {}).get("hard") or (quota.get("spec") or {}).get("hard") or {}
    if not matching_resources(group, plural, hard):
        return False
    sels = scope_selectors(quota)
    if not sels:
        return True
    if group or plural != "pods":
        return False
    return all(pod_matches_scope(s, obj) for s in sels)


def calculate_used(quota: Obj, objects: Callable[[str, str], list[Obj] | None],
                   resource_of: Callable[[str], tuple[str, str] | None]) -> ResourceList:
    """status.used for a quota: for each hard name, the sum over the namespace's objects
    its evaluator accounts for (0 when none); names no served resource accounts for are left out.

    ``objects(group, plural)`` lists the namespace's objects (None: not served);
    ``resource_of(name)`` says which resource a ``count/…`` name counts."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    used: ResourceList = {}
    by_resource: dict[tuple[str, str], list[str]] = {}
    for name in hard:
        gr = evaluator_for(name, resource_of)
        if gr is not None:
            by_resource.setdefault(gr, []).append(name)
    for (group, plural), names in by_resource.items():
        items = objects(group, plural)
        if items is None:
            continue
        total: ResourceList = {n: ZERO for n in names}
        for obj in items:
            if quota_matches(quota, group, plural, obj):
                total = add(total, mask(usage(group, plural, obj), names))
        used.update(total)
    return used


def evaluator_for(name: str, resource_of: Callable[[str], tuple[str, str] | None]) -> tuple[str, str] | None:
    """The (group, plural) whose evaluator accounts for a quota resource name."""
    if name.startswith("count/"):
        return resource_of(name)
    for plural in ("pods", "services", "persistentvolumeclaims", *_LEGACY_COUNTS):
        if matches_resource("", plural, name):
            return ("", plural)
    return None


def served_count_resource(name: str) -> tuple[str, str] | None:
    """The served (group, plural) a ``count/<resource>[.<group>]`` name counts, if any."""
    from kubelite.api.resources import served
    if not name.startswith("count/"):
        return None
    plural, _, group = name[len("count/"):].partition(".")
    for r in served():
        if r.plural == plural and r.group == group and "create" in r.verbs:
            return (group, plural)
    return None
