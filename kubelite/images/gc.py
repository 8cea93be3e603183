"""Image garbage collection settings and loop, configured as the kubelet's are.

`kubelite server` and `kubelite agent` take the kubelet's flags
(`--image-gc-high-threshold`, `--image-gc-low-threshold`, `--image-minimum-gc-age`) and
check them as the kubelet's configuration validation does, so a bad combination stops the
start with the kubelet's words instead of silently collecting at the wrong time.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from typing import Protocol

from .store import GCPolicy

log = logging.getLogger("kubelite.node")

GC_PERIOD = 300.0   # the kubelet's ImageGCPeriod (5 minutes; not a kubelet flag)

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class InvalidGCConfig(ValueError):
    """The thresholds break the kubelet's rules; the message is the kubelet's."""


def go_duration_seconds(text: str) -> float:
    """Seconds in a Go duration ("2m", "1m30s", "0s"); ValueError for anything else."""
    s = text.strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"time: invalid duration {text!r}")
    return total


def _duration_arg(text: str) -> float:
    """argparse type: a Go duration."""
    try:
        return go_duration_seconds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The kubelet's image GC flags, with its defaults."""
    d = GCPolicy()
    parser.add_argument("--image-gc-high-threshold", type=int, default=d.high_percent, metavar="PERCENT",
                        help="disk usage of the image store's filesystem past which image garbage collection "
                             f"always runs (0-100, default {d.high_percent})")
    parser.add_argument("--image-gc-low-threshold", type=int, default=d.low_percent, metavar="PERCENT",
                        help="disk usage image garbage collection frees down to; it never runs below it "
                             f"(0-100, less than the high threshold; default {d.low_percent})")
    parser.add_argument("--image-minimum-gc-age", type=_duration_arg, default=d.min_age, metavar="DURATION",
                        help="minimum age of an unused image before it is garbage collected (default 2m)")
    # Hidden: the kubelet's fixed 5-minute period, shortened by tests.
    parser.add_argument("--image-gc-period", type=float, default=GC_PERIOD, help=argparse.SUPPRESS)


def validate(high: int, low: int) -> None:
    """InvalidGCConfig with every complaint of the kubelet's validation, one per line."""
    errs = []
    if not 0 <= high <= 100:
        errs.append(f"invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) {high} "
                    f"must be between 0 and 100, inclusive")
    if not 0 <= low <= 100:
        errs.append(f"invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {low} "
                    f"must be between 0 and 100, inclusive")
    if low >= high:
        errs.append(f"invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {low} "
                    f"must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {high}")
    if errs:
        raise InvalidGCConfig("\n".join(errs))


def policy_from_args(args: argparse.Namespace) -> GCPolicy:
    """The GC policy the flags ask for; InvalidGCConfig when the kubelet would refuse them."""
    validate(args.image_gc_high_threshold, args.image_gc_low_threshold)
    return GCPolicy(high_percent=args.image_gc_high_threshold, low_percent=args.image_gc_low_threshold,
                    min_age=args.image_minimum_gc_age)


class Collectable(Protocol):
    """What the GC loop collects in (an ImageStore)."""

    def garbage_collect(self, in_use: Iterable[str], policy: GCPolicy | None = None) -> list[str]:
        """Remove unused images per `policy`; the names removed."""


async def run(store: Collectable, policy: GCPolicy, in_use: Callable[[], set[str]], stop: asyncio.Event,
              period: float = GC_PERIOD) -> None:
    """Every `period` until `stop`: collect the images no pod of the node uses, per `policy`."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), period)
        except TimeoutError:
            try:
                await asyncio.to_thread(store.garbage_collect, in_use(), policy)
            except Exception as e:  # a full or broken disk must not end the agent
                log.warning("image garbage collection failed: %s", e)
