"""Admission webhooks: MutatingWebhookConfigurations and ValidatingWebhookConfigurations.

``source`` keeps the configurations in memory, ``matching`` decides which webhooks a
request goes to, ``client`` calls one over HTTPS and ``dispatcher`` runs them as the
registry's mutating and validating admission hooks.
"""
from __future__ import annotations

from kubelite.apiserver.webhooks.dispatcher import Webhooks
from kubelite.apiserver.webhooks.shared import begin_request, finish_request

__all__ = ["Webhooks", "begin_request", "finish_request"]
