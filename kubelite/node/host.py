"""What the node's parts need from the agent that hosts them.

The agent (agent.py) owns the API client, the informers and the runtime; it creates a
pod worker per pod (podworker.py) and serves its HTTPS API (api.py). Neither of those
imports the agent: each names here the few things it asks of its host, and the agent
implements them. Dependencies point one way — agent → worker, agent → api, both → this
module — so a worker can be driven by a test double and the agent can change its
insides without reaching into either.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kubelite.node.runtime.base import ContainerHandle, Runtime, Sandbox
from kubelite.node.status import ContainerStatus
from kubelite.node.volumes.base import VolumeAPI

Obj = dict[str, Any]


class EventSink(Protocol):
    """Where a worker reports Kubernetes Events about its pod (the agent's EventRecorder)."""

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record one Event about ``obj`` (fire and forget)."""


class PodHost(Protocol):
    """What one pod worker asks of the node it runs on."""

    @property
    def node_ip(self) -> str:
        """The node's address (status.hostIP, the downward API's status.hostIP)."""

    @property
    def runtime(self) -> Runtime:
        """The container runtime that runs the pod."""

    @property
    def recorder(self) -> EventSink:
        """Where the pod's Events go."""

    @property
    def volume_api(self) -> VolumeAPI:
        """The ConfigMaps, Secrets and tokens the pod's volumes read (watched through the API)."""

    def services_for(self, pod: Obj) -> list[Obj]:
        """The Services whose environment variables the pod's containers get."""

    def image_present(self, image: str) -> bool:
        """Whether the image is already in the node's store (a pull would find it at once)."""

    async def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A ConfigMap or Secret an env reference names (None when it does not exist)."""

    async def write_status(self, pod: Obj, status: Obj) -> None:
        """Write the pod's status through the API."""

    async def wait_drained(self, pod: Obj, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until no proxy sends the pod new connections."""

    async def delete_pod(self, pod: Obj) -> None:
        """Remove the pod object once everything of it has stopped."""


class RunningPod(Protocol):
    """A pod the node is running, as the agent API reads it (a pod worker is one)."""

    @property
    def pod(self) -> Obj:
        """The newest pod object."""

    @property
    def init(self) -> Sequence[ContainerStatus]:
        """States of the init containers."""

    @property
    def main(self) -> Sequence[ContainerStatus]:
        """States of the regular containers."""

    @property
    def handles(self) -> Mapping[str, ContainerHandle]:
        """The running instance of each container, by container name."""

    @property
    def sandbox(self) -> Sandbox | None:
        """The pod's sandbox, once it exists."""


class PodIndex(Protocol):
    """What the agent API asks of its node: the runtime, and the pods it runs."""

    @property
    def runtime(self) -> Runtime:
        """The container runtime (logs, exec, attach, port-forward go through it)."""

    def running_pod(self, namespace: str, name: str) -> RunningPod | None:
        """The pod ``namespace/name`` if this node runs it."""

    @property
    def node_name(self) -> str:
        """The Node's name."""

    def running_pods(self) -> list[RunningPod]:
        """Every pod this node runs now (for the resource summary)."""
