"""Sub-commands beyond ``server`` (agent, image, rollout), registered on the main parser."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the extra sub-commands that exist so far."""
