"""The built-in ingress controller's flags, apart from the controller.

``kubelite server`` builds these options on every start, ``--api-only`` too; keeping them
here means that building them does not import the controller and its TLS store.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IngressOptions:
    """Flags of the built-in ingress controller (``kubelite server``)."""

    enabled: bool = True
    http_port: int = 0    # 0: 80 when root and free, else 10080 (else any free port)
    https_port: int = 0   # 0: 443 when root and free, else 10443 (else any free port)
