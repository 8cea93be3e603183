"""`kubelite rollout status deployment/NAME`: kubectl's rollout status, failing fast.

It waits like `kubectl rollout status` and prints the same progress lines, but it also
ends — with exit code 1 and the pods' reason — as soon as the controller says the new
pods are failing (Progressing=False, NewPodsFailing) or has rolled the Deployment back
automatically, instead of waiting for the progress deadline.  kubectl itself is left
alone: it only gives up on ProgressDeadlineExceeded.

Design: two informers (the Deployment by name, the namespace's ReplicaSets) whose
handlers only set a flag; the loop judges the cached objects with the pure ``verdict``
each time something changed.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from kubelite.api import meta, resources
from kubelite.controllers.deployment import autorollback, util

if TYPE_CHECKING:
    from kubelite.client.rest import ClientConfig

Obj = dict[str, Any]


class Verdict(NamedTuple):
    """Where the rollout stands: a line to print, and whether (and how) it ended."""

    line: str
    done: bool = False
    error: str = ""


def verdict(d: Obj | None, rss: list[Obj], name: str) -> Verdict:
    """Judge one Deployment (and its ReplicaSets) as the CLI reports it."""
    if d is None:
        return Verdict("", True, f'deployments.apps "{name}" not found')
    if autorollback.on_restored_template(d, rss):
        src = meta.annotations_of(d).get(autorollback.ROLLED_BACK_FROM, "")
        return Verdict("", True, f'deployment "{name}" was rolled back automatically from {src}')
    status = d.get("status") or {}
    if int(meta.meta(d).get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Verdict("Waiting for deployment spec update to be observed...")
    cond = util.get_condition(status, "Progressing") or {}
    if cond.get("reason") == util.TIMED_OUT:
        return Verdict("", True, f'deployment "{name}" exceeded its progress deadline')
    if cond.get("reason") == autorollback.NEW_PODS_FAILING:
        return Verdict("", True, f'deployment "{name}" rollout failed: {cond.get("message")}')
    want = util.replicas(d)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    prefix = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return Verdict(f"{prefix}{updated} out of {want} new replicas have been updated...")
    if total > updated:
        return Verdict(f"{prefix}{total - updated} old replicas are pending termination...")
    if available < updated:
        return Verdict(f"{prefix}{available} of {updated} updated replicas are available...")
    return Verdict(f'deployment "{name}" successfully rolled out', True)


async def wait(config: ClientConfig, namespace: str, name: str, *, timeout: float | None,
               out: Any = None, err: Any = None) -> int:
    """Print the rollout's progress until it ends; 0 when rolled out, 1 otherwise."""
    from kubelite.client.informer import InformerFactory
    from kubelite.client.rest import Client

    out, err = out or sys.stdout, err or sys.stderr
    client = Client(config)
    factory = InformerFactory(client)
    deployments = factory.informer(resources.DEPLOYMENTS, namespace=namespace, field_selector=f"metadata.name={name}")
    replicasets = factory.informer(resources.REPLICASETS, namespace=namespace)
    changed = asyncio.Event()
    mark = lambda *_: changed.set()  # noqa: E731 - handlers only flag, never work
    for inf in (deployments, replicasets):
        inf.add_handler(mark, mark, mark)
    last = ""
    try:
        async with asyncio.timeout(timeout):
            factory.start()
            await factory.wait_synced()
            while True:
                changed.clear()
                v = verdict(deployments.get_by_name(namespace, name), replicasets.list(namespace), name)
                if v.line and v.line != last:
                    print(v.line, file=out, flush=True)
                    last = v.line
                if v.error:
                    print(f"error: {v.error}", file=err, flush=True)
                    return 1
                if v.done:
                    return 0
                await changed.wait()
    except TimeoutError:
        print("error: timed out waiting for the condition", file=err, flush=True)
        return 1
    finally:
        await factory.stop()
        await client.close()


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_timeout(text: str) -> float | None:
    """`--timeout` as kubectl takes it ("90s", "1m30s"; a bare number is seconds); 0: forever (None)."""
    s = text.strip()
    if re.fullmatch(r"\d+(?:\.\d*)?", s):
        return float(s) or None
    parts = list(_DURATION.finditer(s))
    if not s or "".join(m.group(0) for m in parts) != s:
        raise ValueError(f"invalid --timeout {text!r}: use a duration such as 90s or 2m")
    return sum(float(m.group(1)) * _UNITS[m.group(2)] for m in parts) or None


def cmd_status(args: argparse.Namespace) -> int:
    """Entry point of `kubelite rollout status`."""
    from kubelite.client.rest import ClientConfig
    from kubelite.ui.rollout import context_namespace, default_kubeconfig, parse_target

    try:
        name = parse_target(args.target)
        timeout = parse_timeout(args.timeout)
    except ValueError as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 2
    path = args.kubeconfig or default_kubeconfig()
    if not os.path.exists(path):
        print(f"kubelite: no kubeconfig at {path} (start `kubelite server` or pass --kubeconfig)", file=sys.stderr)
        return 1
    namespace = args.namespace or context_namespace(path)
    config = ClientConfig.from_kubeconfig(path, user_agent="kubelite-rollout-status")
    try:
        return asyncio.run(wait(config, namespace, name, timeout=timeout))
    except KeyboardInterrupt:
        return 130
