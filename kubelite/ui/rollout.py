"""`kubelite rollout watch deployment/NAME`: a live picture of a rolling update.

Design: four informers (the Deployment by name, and the namespace's ReplicaSets, pods and
events) fill local caches; their handlers only set a "something changed" flag.  One render
loop redraws from the caches when the flag is set (coalescing bursts: a rollout step is
a dozen watch events) and once a second anyway, so ages move.  The picture itself is built
by pure functions from ``rollout_state`` plus ``render()`` here, so ``--once`` and tests
draw exactly what the live view draws.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kubelite.api import meta
from kubelite.api.duration import short_human_duration
from kubelite.controllers.deployment import util
from kubelite.ui.caches import RolloutCaches
from kubelite.ui.rollout_state import (
    COMPLETED,
    CRASH_LOOP,
    CREATING,
    ERR_IMAGE_PULL,
    FAILED,
    IMAGE_PULL_BACKOFF,
    PENDING,
    READY,
    RUNNING,
    TERMINATING,
    ReplicaSetView,
    RolloutState,
    build_state,
    explain,
    pod_restarts,
    pod_state,
)

if TYPE_CHECKING:  # the client is imported when a watch starts, not with the renderers
    from kubelite.client.protocols import APIClient
    from kubelite.client.rest import ClientConfig

Obj = dict[str, Any]

# Cell colours per pod state; anything unknown (another waiting reason) is drawn as a failure.
STATE_STYLE = {
    PENDING: "black on grey70",
    CREATING: "black on yellow",
    RUNNING: "black on cyan",
    READY: "black on green",
    TERMINATING: "white on magenta",
    ERR_IMAGE_PULL: "white on red",
    IMAGE_PULL_BACKOFF: "white on red",
    CRASH_LOOP: "white on dark_red",
    COMPLETED: "white on blue",
    FAILED: "white on dark_red",
}
LEGEND = (PENDING, CREATING, RUNNING, READY, TERMINATING, IMAGE_PULL_BACKOFF, CRASH_LOOP)
MAX_EVENTS = 8


# --- drawing ---------------------------------------------------------------------------

def _age(ts: str | None, now: _dt.datetime) -> str:
    t = meta.parse_time(ts)
    if t is None:
        return "?"
    return short_human_duration(max(0.0, (now - t).total_seconds()))


def _int_or_percent(v: Any, default: str) -> str:
    return default if v is None else str(v)


def _spec_line(d: Obj) -> Text:
    spec = d.get("spec") or {}
    want = util.replicas(d)
    t = Text("spec    ", style="bold")
    t.append(f"replicas {want}")
    kind = util.strategy_type(d)
    if kind == "RollingUpdate":
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge, unavail = util.max_surge(d), util.max_unavailable(d)
        t.append(f" · RollingUpdate maxSurge {_int_or_percent(ru.get('maxSurge'), '25%')} → {surge}"
                 f" · maxUnavailable {_int_or_percent(ru.get('maxUnavailable'), '25%')} → {unavail}"
                 f" (pods: ≥{want - unavail} available, ≤{want + surge} total)")
    else:
        t.append(f" · {kind} (all old pods stop before new ones start)")
    if spec.get("minReadySeconds"):
        t.append(f" · minReadySeconds {spec['minReadySeconds']}")
    t.append(" · paused ")
    t.append("yes" if spec.get("paused") else "no", style="bold yellow" if spec.get("paused") else "")
    return t


def _status_line(d: Obj) -> Text:
    st = d.get("status") or {}
    g = lambda f: int(st.get(f) or 0)  # noqa: E731
    t = Text("status  ", style="bold")
    t.append(f"{g('replicas')} pods · {g('updatedReplicas')} up-to-date · {g('readyReplicas')} ready · "
             f"{g('availableReplicas')} available · {g('unavailableReplicas')} unavailable")
    return t


def _conditions(d: Obj) -> Table:
    tbl = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    for col in ("type", "status", "reason", "message"):
        tbl.add_column(col, overflow="fold")
    for c in (d.get("status") or {}).get("conditions") or []:
        ok = c.get("status") == "True"
        tbl.add_row(c.get("type", ""), Text(c.get("status", ""), style="green" if ok else "red"),
                    c.get("reason", ""), c.get("message", ""))
    return tbl


def replica_bar(v: ReplicaSetView) -> Text:
    """One block per pod: █ available, ▓ ready, ▒ created (not ready), ░ still to create."""
    avail = min(v.available, v.current)
    ready = max(0, min(v.ready, v.current) - avail)
    created = max(0, v.current - avail - ready)
    missing = max(0, v.desired - v.current)
    t = Text()
    t.append("█" * avail, style="green")
    t.append("▓" * ready, style="cyan")
    t.append("▒" * created, style="yellow")
    t.append("░" * missing, style="grey50")
    if not t.plain:
        t.append("·", style="grey50")
    return t


def _replicasets(state: RolloutState) -> Table:
    tbl = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="ReplicaSets", title_justify="left",
                title_style="bold")
    numeric = {"REV", "DESIRED", "CURRENT", "READY", "AVAILABLE"}
    for col in ("", "REV", "NAME", "IMAGE", "DESIRED", "CURRENT", "READY", "AVAILABLE", "PODS"):
        tbl.add_column(col, justify="right" if col in numeric else "left",
                       overflow="fold" if col == "IMAGE" else "ellipsis")
    for v in state.replicasets:
        role = Text("new", style="bold green") if v.new else Text("old", style="grey62")
        tbl.add_row(role, str(v.revision), v.name, v.image, str(v.desired), str(v.current), str(v.ready),
                    str(v.available), replica_bar(v))
    return tbl


def pod_cell(pod: Obj, rs_name: str) -> Text:
    """A coloured cell: the pod's name suffix and state."""
    name = meta.name(pod)
    short = name[len(rs_name) + 1:] if name.startswith(rs_name + "-") else name
    state = pod_state(pod)
    label = f" {short} {state}"
    restarts = pod_restarts(pod)
    if restarts:
        label += f" ↻{restarts}"
    return Text(label + " ", style=STATE_STYLE.get(state, "white on red"))


def _pods(state: RolloutState) -> RenderableType:
    lines: list[RenderableType] = [Text("Pods", style="bold")]
    for v in state.replicasets:
        if not v.pods:
            continue
        line = Text(f"  rev {v.revision} {'new' if v.new else 'old'}  ", style="grey62")
        for i, p in enumerate(v.pods):
            if i:
                line.append(" ")
            line.append_text(pod_cell(p, v.name))
        lines.append(line)
    if len(lines) == 1:
        lines.append(Text("  (none)", style="grey50"))
    legend = Text("  ")
    for s in LEGEND:
        legend.append(f" {s} ", style=STATE_STYLE[s])
        legend.append(" ")
    lines.append(legend)
    lines.append(Text("  bars: █ available ▓ ready ▒ created ░ to create", style="grey50"))
    return Group(*lines)


def relevant_events(events: list[Obj], state: RolloutState) -> list[Obj]:
    """Events about the Deployment or its ReplicaSets, oldest first."""
    d = state.deployment
    if d is None:
        return []
    uid, rs_names = meta.uid(d), {v.name for v in state.replicasets}
    out = []
    for ev in events:
        io = ev.get("involvedObject") or {}
        if io.get("uid") == uid or (io.get("kind") == "Deployment" and io.get("name") == meta.name(d)) \
                or (io.get("kind") == "ReplicaSet" and io.get("name") in rs_names):
            out.append(ev)

    def when(ev: Obj) -> tuple[str, int]:
        ts = ev.get("lastTimestamp") or ev.get("eventTime") or meta.meta(ev).get("creationTimestamp") or ""
        rv = meta.resource_version(ev)
        return ts[:19], int(rv) if rv.isdigit() else 0
    return sorted(out, key=when)


def _events(events: list[Obj], now: _dt.datetime) -> RenderableType:
    lines: list[RenderableType] = [Text("Recent changes", style="bold")]
    for ev in events[-MAX_EVENTS:]:
        ts = ev.get("lastTimestamp") or ev.get("eventTime") or meta.meta(ev).get("creationTimestamp")
        t = Text(f"  {_age(ts, now):>5} ago  ", style="grey62")
        t.append(f"{ev.get('reason', ''):<18} ", style="yellow" if ev.get("type") == "Warning" else "cyan")
        t.append(ev.get("message", ""))
        if int(ev.get("count") or 1) > 1:
            t.append(f" (x{ev['count']})", style="grey62")
        lines.append(t)
    if len(lines) == 1:
        lines.append(Text("  (no events yet)", style="grey50"))
    return Group(*lines)


def render(state: RolloutState, events: list[Obj], *, namespace: str, name: str,
           now: _dt.datetime | None = None) -> RenderableType:
    """The whole picture: spec, conditions, the step, ReplicaSets, pods, recent changes."""
    now = now or meta.now()
    d = state.deployment
    title = Text(f"Deployment {namespace}/{name}", style="bold")
    if d is None:
        return Group(title, Text("▶ " + explain(state), style="bold yellow"))
    gen = meta.meta(d).get("generation") or 0
    observed = (d.get("status") or {}).get("observedGeneration") or 0
    title.append(f"   revision {util.revision(d) or '-'}   generation {gen} (observed {observed})",
                 style="grey62")
    step = explain(state)
    style = "bold green" if step.startswith(("rolled out", "scaled to zero")) else \
        "bold red" if step.startswith(("stuck", "failed")) else "bold yellow"
    return Group(title, _spec_line(d), _status_line(d), _conditions(d), Text("▶ " + step, style=style),
                 Text(""), _replicasets(state), _pods(state), Text(""),
                 _events(relevant_events(events, state), now))


# --- watching --------------------------------------------------------------------------

class RolloutWatcher(RolloutCaches):
    """Informers for one Deployment's rollout and a render of their caches."""

    def __init__(self, client: APIClient, namespace: str, name: str):
        super().__init__(client, namespace, deployment_selector=f"metadata.name={name}")
        self.namespace, self.name = namespace, name

    def state(self) -> RolloutState:
        """The rollout as the caches hold it now."""
        d = self.deployments.get_by_name(self.namespace, self.name)
        return build_state(d, self.replicasets.list(self.namespace), self.pods.list(self.namespace))

    def picture(self) -> RenderableType:
        """render() of the current caches."""
        return render(self.state(), self.events.list(self.namespace), namespace=self.namespace, name=self.name)

    async def start(self, timeout: float) -> None:
        """Start the informers and wait for their first lists."""
        await self.start_caches(timeout)

    async def stop(self) -> None:
        """Stop every informer."""
        await self.stop_caches()


async def watch(config: ClientConfig, namespace: str, name: str, *, once: bool, console: Console,
                sync_timeout: float = 30.0) -> int:
    """Draw the rollout live until cancelled (or once, with ``once``); returns an exit code."""
    from rich.live import Live

    from kubelite.client.rest import Client

    client = Client(config)
    w = RolloutWatcher(client, namespace, name)
    # Ctrl-C ends the view through an event the loop looks at, not by cancelling the main
    # task: a cancel that landed as a watch burst was being drawn was once lost, leaving the
    # view running after Ctrl-C (seen in the test suite, not reproduced by hand).
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = False
    try:
        try:
            await w.start(sync_timeout)
        except TimeoutError:
            console.print(f"kubelite: cannot list from the API server at {config.server}", style="red")
            return 1
        if once:
            console.print(w.picture())
            return 0 if w.state().deployment is not None else 1
        try:
            loop.add_signal_handler(signal.SIGINT, interrupted.set)
            handled = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: Ctrl-C cancels the task as before
        with Live(w.picture(), console=console, auto_refresh=False, screen=False,
                  vertical_overflow="visible") as live:
            while not interrupted.is_set():
                # Not wait_for: on 3.11 it swallows a cancel that lands as the event fires.
                waiter = asyncio.ensure_future(w.changed.wait())
                stopper = asyncio.ensure_future(interrupted.wait())
                try:
                    done, _ = await asyncio.wait({waiter, stopper}, timeout=1.0,
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    stopper.cancel()
                if interrupted.is_set():
                    break
                if done:
                    await asyncio.sleep(0.05)  # let the rest of a burst of watch events land
                w.changed.clear()
                live.update(w.picture(), refresh=True)
        return 0
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
        # Bounded: an informer that does not stop must not keep a Ctrl-C'd view alive.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(w.stop(), 5.0)
        await client.close()


# --- command line ----------------------------------------------------------------------

def default_kubeconfig() -> str:
    """$KUBECONFIG (its first entry), else the kubeconfig ``kubelite server`` writes."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    if first:
        return first
    from kubelite.startup import default_data_dir
    return os.path.join(default_data_dir(), "kubeconfig")


def context_namespace(kubeconfig: str) -> str:
    """The namespace of the kubeconfig's current context, or "default"."""
    import yaml
    try:
        with open(kubeconfig) as f:
            kc = yaml.safe_load(f) or {}
        cur = kc.get("current-context")
        ctx = next((c.get("context") or {} for c in kc.get("contexts") or [] if c.get("name") == cur), {})
        return ctx.get("namespace") or "default"
    except (OSError, yaml.YAMLError):
        return "default"


def parse_target(target: str) -> str:
    """`deployment/NAME`, `deploy/NAME`, `deployments.apps/NAME` or `NAME` → NAME."""
    kind, sep, name = target.partition("/")
    if not sep:
        return target
    if kind.lower() not in ("deployment", "deployments", "deploy", "deployment.apps", "deployments.apps"):
        raise ValueError(f"only deployments can be watched, not {kind!r}")
    if not name:
        raise ValueError("missing deployment name")
    return name


def cmd_watch(args: argparse.Namespace) -> int:
    """Entry point of `kubelite rollout watch`."""
    from kubelite.client.rest import ClientConfig

    try:
        name = parse_target(args.target)
    except ValueError as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 2
    path = args.kubeconfig or default_kubeconfig()
    if not os.path.exists(path):
        print(f"kubelite: no kubeconfig at {path} (start `kubelite server` or pass --kubeconfig)", file=sys.stderr)
        return 1
    namespace = args.namespace or context_namespace(path)
    console = Console() if sys.stdout.isatty() else Console(width=max(120, Console().width))
    config = ClientConfig.from_kubeconfig(path, user_agent="kubelite-rollout-watch")
    try:
        return asyncio.run(watch(config, namespace, name, once=args.once, console=console))
    except KeyboardInterrupt:
        return 0
