"""Field errors and the shared checks every kind's validation uses.

Upstream builds a ``field.ErrorList`` and the API server turns each entry into one
``details.causes[]`` item whose message is the error *body*: ``Invalid value: -1: must be
greater than or equal to 0``.  kubectl reprints those bodies verbatim, so the value
rendering below copies Go's rules: ints bare, strings ``%q``-quoted, structs ``%#v``.
Callers that pass a struct-like value (a selector, an IntOrString) wrap it in ``GoRepr``
with the exact Go spelling.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.api.errors import Cause

Errs = list[Cause]


class GoRepr(str):
    """A value already rendered the way Go's fmt would print it."""


# --- value rendering -------------------------------------------------------------------

def go_quote(s: str) -> str:
    """Go's %q for a string."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_value(v: Any) -> str:
    """Render a bad value as field.ErrorBody does."""
    if isinstance(v, GoRepr):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, dict):
        return go_string_map(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return go_string_slice(v)
        return "[]interface {}{" + ", ".join(go_value(x) for x in v) + "}"
    return repr(v)


def go_string_map(m: dict | None) -> str:
    """%#v of a map[string]string (Go prints map keys sorted)."""
    if m is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(m[k]))}" for k in sorted(m))
    return "map[string]string{" + items + "}"


def go_string_slice(v: list | None) -> str:
    """%#v of a []string."""
    if v is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(str(x)) for x in v) + "}"


def go_label_selector(sel: dict | None) -> GoRepr:
    """%#v of a metav1.LabelSelector, as printed in `field is immutable` errors."""
    if sel is None:
        return GoRepr("null")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        ex = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs:
            parts.append(f"v1.LabelSelectorRequirement{{Key:{go_quote(e.get('key', ''))}, "
                         f"Operator:{go_quote(e.get('operator', ''))}, Values:{go_string_slice(e.get('values'))}}}")
        ex = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{go_string_map(sel.get('matchLabels'))}, MatchExpressions:{ex}}}")


def go_int_or_string(v: Any) -> GoRepr:
    """%#v of an intstr.IntOrString value."""
    if isinstance(v, str):
        return GoRepr(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(v)}}}")
    return GoRepr(f"intstr.IntOrString{{Type:0, IntVal:{int(v or 0)}, StrVal:\"\"}}")


# --- field errors ----------------------------------------------------------------------

def _body(kind: str, value: Any, detail: str) -> str:
    s = f"{kind}: {go_value(value)}"
    return f"{s}: {detail}" if detail else s


def invalid(path: str, value: Any, detail: str) -> Cause:
    """field.Invalid."""
    return Cause("FieldValueInvalid", _body("Invalid value", value, detail), path)


def required(path: str, detail: str = "") -> Cause:
    """field.Required."""
    return Cause("FieldValueRequired", f"Required value: {detail}" if detail else "Required value", path)


def forbidden(path: str, detail: str) -> Cause:
    """field.Forbidden."""
    return Cause("FieldValueForbidden", f"Forbidden: {detail}" if detail else "Forbidden", path)


def duplicate(path: str, value: Any) -> Cause:
    """field.Duplicate."""
    return Cause("FieldValueDuplicate", _body("Duplicate value", value, ""), path)


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Cause:
    """field.NotSupported; ``valid`` in the order upstream lists them."""
    detail = "supported values: " + ", ".join(go_quote(v) for v in valid)
    return Cause("FieldValueNotSupported", _body("Unsupported value", value, detail), path)


def too_long(path: str, max_len: int) -> Cause:
    """field.TooLong."""
    return Cause("FieldValueTooLong", f"Too long: must have at most {max_len} bytes", path)


def too_many(path: str, actual: int, max_items: int) -> Cause:
    """field.TooMany."""
    return Cause("FieldValueTooMany", f"Too many: {actual}: must have at most {max_items} items", path)


def child(path: str, *names: str) -> str:
    """Path.Child: ``spec`` + ``replicas`` → ``spec.replicas``."""
    for n in names:
        path = f"{path}.{n}" if path else n
    return path


def index(path: str, i: int) -> str:
    """Path.Index."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """Path.Key."""
    return f"{path}[{k}]"


# --- string format checks (apimachinery util/validation) --------------------------------

_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT = "[-A-Za-z0-9_.]"
QUALIFIED_NAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT}*)?{_QNAME_CHAR}"
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                       "with an alphanumeric character")
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                      "alphabetic character, and end with an alphanumeric character")
PERCENT_FMT = "[0-9]+%"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
CONFIGMAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIGMAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
HTTP_HEADER_FMT = "[-A-Za-z0-9]+"
_HTTP_HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"
ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
                "or '.', and must not start with a digit")


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + "$")


_RE_QNAME = _full(QUALIFIED_NAME_FMT)
_RE_LABEL_VALUE = _full(LABEL_VALUE_FMT)
_RE_DNS1123_LABEL = _full(DNS1123_LABEL_FMT)
_RE_DNS1123_SUB = _full(DNS1123_SUBDOMAIN_FMT)
_RE_DNS1035 = _full(DNS1035_LABEL_FMT)
_RE_PERCENT = _full(PERCENT_FMT)
_RE_CM_KEY = _full(CONFIGMAP_KEY_FMT)
_RE_HTTP_HEADER = _full(HTTP_HEADER_FMT)
_RE_ENV = _full(ENV_VAR_FMT)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = "".join(("" if i == 0 else " or ") + f"'{e}', " for i, e in enumerate(examples))
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    """validation.MaxLenError."""
    return f"must be no more than {n} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    """validation.InclusiveRangeError."""
    return f"must be between {lo} and {hi}, inclusive"


def _match(rx: re.Pattern[str], s: str) -> bool:
    # Go's $ does not accept a trailing newline the way Python's does.
    return rx.match(s) is not None and not s.endswith("\n")


def is_qualified_name(value: str) -> list[str]:
    """IsQualifiedName: label keys, annotation keys, finalizers."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [("a qualified name " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
                 + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _match(_RE_QNAME, name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """IsValidLabelValue."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _match(_RE_LABEL_VALUE, value):
        errs.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    """IsDNS1123Label."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _match(_RE_DNS1123_LABEL, value):
        if _match(_RE_DNS1123_SUB, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain."""
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _match(_RE_DNS1123_SUB, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """IsDNS1035Label."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _match(_RE_DNS1035, value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_valid_percent(value: str) -> list[str]:
    """IsValidPercent."""
    if not _match(_RE_PERCENT, value):
        return [regex_error(_PERCENT_MSG, PERCENT_FMT, "1%", "93%")]
    return []


def is_valid_port_num(port: Any) -> list[str]:
    """IsValidPortNum."""
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """IsValidPortName (IANA_SVC_NAME)."""
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not re.fullmatch(r"[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    """IsConfigMapKey (also Secret keys)."""
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _match(_RE_CM_KEY, value):
        errs.append(regex_error(_CONFIGMAP_KEY_MSG, CONFIGMAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errs + _chdir_prefix(value)


def is_env_var_name(value: str) -> list[str]:
    """IsEnvVarName."""
    errs = []
    if not _match(_RE_ENV, value):
        errs.append(regex_error(_ENV_VAR_MSG, ENV_VAR_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"))
    return errs + _chdir_prefix(value)


def is_http_header_name(value: str) -> list[str]:
    """IsHTTPHeaderName."""
    if not _match(_RE_HTTP_HEADER, value):
        return [regex_error(_HTTP_HEADER_MSG, HTTP_HEADER_FMT, "X-Header-Name")]
    return []


def is_valid_ip(value: str) -> list[str]:
    """IsValidIP."""
    try:
        ipaddress.ip_address(value)
        return []
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]


# --- name validators: fn(name, prefix) -> messages --------------------------------------

NameFn = Callable[[str, bool], list[str]]


def _mask_trailing_dash(name: str) -> str:
    # generateName may end in '-': upstream checks it as if the dash were a letter.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """NameIsDNSSubdomain."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    """NameIsDNSLabel."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """NameIsDNS1035Label."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


# --- shared field checks ---------------------------------------------------------------

def nonnegative(value: Any, path: str) -> Errs:
    """ValidateNonnegativeField."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def immutable(new: Any, old: Any, path: str, shown: Any = None) -> Errs:
    """ValidateImmutableField; ``shown`` overrides how the new value prints."""
    if new != old:
        return [invalid(path, new if shown is None else shown, "field is immutable")]
    return []


def validate_label_name(k: str, path: str) -> Errs:
    """ValidateLabelName."""
    return [invalid(path, k, m) for m in is_qualified_name(k)]


def validate_labels(labels: Any, path: str) -> Errs:
    """ValidateLabels (key and value rules, errors on the map's path)."""
    errs: Errs = []
    for k, v in (labels or {}).items():
        errs += validate_label_name(k, path)
        errs += [invalid(path, v, m) for m in is_valid_label_value(str(v))]
    return errs


def validate_annotations(annotations: Any, path: str) -> Errs:
    """ValidateAnnotations: qualified keys, total size under 256 KiB."""
    errs: Errs = []
    total = 0
    for k, v in (annotations or {}).items():
        errs += [invalid(path, k, m) for m in is_qualified_name(k.lower())]
        total += len(k) + len(v or "")
    if total > 256 * 1024:
        errs.append(too_long(path, 256 * 1024))
    return errs


def validate_label_selector(sel: dict | None, path: str) -> Errs:
    """ValidateLabelSelector (metav1 form), values validated strictly."""
    errs: Errs = []
    if not sel:
        return errs
    for i, req in enumerate(sel.get("matchExpressions") or []):
        p = index(child(path, "matchExpressions"), i)
        op = req.get("operator", "")
        values = req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(child(p, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(child(p, "operator"), op, "not a valid selector operator"))
        errs += validate_label_name(req.get("key", ""), child(p, "key"))
        for j, v in enumerate(values):
            errs += [invalid(index(child(p, "values"), j), v, m) for m in is_valid_label_value(v)]
    errs += validate_labels(sel.get("matchLabels"), child(path, "matchLabels"))
    return errs


_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion", "customresourcecleanup.apiextensions.k8s.io"}


def _validate_finalizer(name: str, path: str) -> Errs:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        errs.append(invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def _validate_owner_refs(refs: Any, path: str) -> Errs:
    errs: Errs = []
    first_controller = ""
    for ref in refs or []:
        av = ref.get("apiVersion", "")
        version = av.split("/")[-1] if av else ""
        if not version:
            errs.append(invalid(child(path, "apiVersion"), av, "version must not be empty"))
        if not ref.get("kind"):
            errs.append(invalid(child(path, "kind"), ref.get("kind", ""), "kind must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(child(path, "name"), ref.get("name", ""), "name must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(child(path, "uid"), ref.get("uid", ""), "uid must not be empty"))
        if ref.get("controller"):
            cur = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errs.append(invalid(path, GoRepr("[]v1.OwnerReference{...}"),
                                    "Only one reference can have Controller set to true. "
                                    f'Found "true" in references for {first_controller} and {cur}'))
            else:
                first_controller = cur
    return errs


def _validate_meta_common(md: dict, path: str) -> Errs:
    errs = validate_labels(md.get("labels"), child(path, "labels"))
    errs += validate_annotations(md.get("annotations"), child(path, "annotations"))
    errs += _validate_owner_refs(md.get("ownerReferences"), child(path, "ownerReferences"))
    fins = md.get("finalizers") or []
    for f in fins:
        errs += _validate_finalizer(f, child(path, "finalizers"))
    if "orphan" in fins and "foregroundDeletion" in fins:
        errs.append(invalid(child(path, "finalizers"), fins, "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def validate_object_meta(obj: dict, namespaced: bool, name_fn: NameFn, path: str = "metadata") -> Errs:
    """ValidateObjectMeta on create (name already generated when generateName was used)."""
    md = obj.get("metadata") or {}
    errs: Errs = []
    gen = md.get("generateName") or ""
    if gen:
        errs += [invalid(child(path, "generateName"), gen, m) for m in name_fn(gen, True)]
    name = md.get("name") or ""
    if not name:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    else:
        errs += [invalid(child(path, "name"), name, m) for m in name_fn(name, False)]
    ns = md.get("namespace") or ""
    if namespaced:
        if not ns:
            errs.append(required(child(path, "namespace")))
        else:
            errs += [invalid(child(path, "namespace"), ns, m) for m in name_is_dns_label(ns, False)]
    elif ns:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    errs += nonnegative(md.get("generation", 0), child(path, "generation"))
    errs += _validate_meta_common(md, path)
    return errs


def validate_object_meta_update(new: dict, old: dict, path: str = "metadata") -> Errs:
    """ValidateObjectMetaUpdate."""
    nm = new.get("metadata") or {}
    om = old.get("metadata") or {}
    errs: Errs = []
    if om.get("deletionTimestamp"):
        extra = sorted(set(nm.get("finalizers") or []) - set(om.get("finalizers") or []))
        if extra:
            errs.append(forbidden(child(path, "finalizers"),
                                  "no new finalizers can be added if the object is being deleted, "
                                  f"found new finalizers {go_string_slice(extra)}"))
    if not nm.get("resourceVersion"):
        errs.append(invalid(child(path, "resourceVersion"), nm.get("resourceVersion", ""), "must be specified for an update"))
    if (nm.get("generation") or 0) < (om.get("generation") or 0):
        errs.append(invalid(child(path, "generation"), nm.get("generation") or 0, "must not be decremented"))
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        errs += immutable(nm.get(f, ""), om.get(f, ""), child(path, f))
    for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        errs += immutable(nm.get(f), om.get(f), child(path, f))
    errs += _validate_meta_common(nm, path)
    return errs
