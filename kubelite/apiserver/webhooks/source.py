"""The webhook configurations the dispatcher works from, kept in memory.

Configurations are API objects in our own store.  The API server reloads this cache
after every write to either kind (as it re-syncs the CRD catalogue after CRD writes), so a
webhook registered by one request is called for the next one; requests never read the
configurations from the store themselves.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.resources import (
    MUTATINGWEBHOOKCONFIGURATIONS,
    VALIDATINGADMISSIONPOLICIES,
    VALIDATINGADMISSIONPOLICYBINDINGS,
    VALIDATINGWEBHOOKCONFIGURATIONS,
    ResourceInfo,
)
from kubelite.api.selectors import LabelSelector, selector_from_dict
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
CONFIG_RESOURCES = frozenset({("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
                              ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
                              ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
                              ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
                              ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
                              ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings")})


@dataclasses.dataclass(frozen=True)
class Hook:
    """One webhook of a configuration, with its selectors parsed once."""

    configuration: str
    mutating: bool
    spec: Obj
    namespace_selector: LabelSelector
    object_selector: LabelSelector

    @property
    def name(self) -> str:
        """The webhook's name."""
        return str(self.spec.get("name") or "")

    @property
    def uid(self) -> tuple[str, str]:
        """What identifies the webhook across reinvocation rounds."""
        return self.configuration, self.name


def _selector(d: Any) -> LabelSelector:
    try:
        return selector_from_dict(d if isinstance(d, dict) else {})
    except StatusError:
        return selector_from_dict(None)  # validation refuses these; an old stored one matches nothing


def _hooks(configs: list[Obj], mutating: bool) -> tuple[Hook, ...]:
    out: list[Hook] = []
    # Upstream calls configurations in name order, and a configuration's webhooks in order.
    for cfg in sorted(configs, key=lambda c: str(c["metadata"].get("name") or "")):
        for spec in cfg.get("webhooks") or []:
            if isinstance(spec, dict):
                out.append(Hook(str(cfg["metadata"].get("name") or ""), mutating, spec,
                                _selector(spec.get("namespaceSelector")), _selector(spec.get("objectSelector"))))
    return tuple(out)


class WebhookSource:
    """The current mutating and validating webhooks, validating policies and their bindings."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.mutating: tuple[Hook, ...] = ()
        self.validating: tuple[Hook, ...] = ()
        self.policies: dict[str, Obj] = {}
        self.bindings: tuple[Obj, ...] = ()

    async def reload(self) -> None:
        """Read both kinds from the store again."""
        m, _, _, _ = await self.registry.list(MUTATINGWEBHOOKCONFIGURATIONS, "")
        v, _, _, _ = await self.registry.list(VALIDATINGWEBHOOKCONFIGURATIONS, "")
        self.mutating = _hooks(m, True)
        self.validating = _hooks(v, False)
        p, _, _, _ = await self.registry.list(VALIDATINGADMISSIONPOLICIES, "")
        b, _, _, _ = await self.registry.list(VALIDATINGADMISSIONPOLICYBINDINGS, "")
        self.policies = {str(x["metadata"]["name"]): x for x in p}
        self.bindings = tuple(sorted(b, key=lambda x: str(x["metadata"]["name"])))

    @staticmethod
    def is_configuration(info: ResourceInfo) -> bool:
        """Whether writes to ``info`` change what this cache holds."""
        return info in (MUTATINGWEBHOOKCONFIGURATIONS, VALIDATINGWEBHOOKCONFIGURATIONS,
                        VALIDATINGADMISSIONPOLICIES, VALIDATINGADMISSIONPOLICYBINDINGS)
