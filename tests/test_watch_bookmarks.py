"""A client that resumes its watch from the last bookmark, as every informer does, sees
every event.

A bookmark used to carry the store's newest revision, while events up to it could still
be on their way to the stream; a watch that ended then (every informer's watch times out
after 5 minutes) made the informer resume past them.  The agent missed deletions (pods
Terminating for good), the scheduler bindings and deletions (phantom pods), the garbage
collector deleted ReplicaSets (orphans).
"""
from __future__ import annotations

import asyncio

from conftest import create_namespace

from kubelite.api.resources import CONFIGMAPS
from kubelite.client.rest import Client

CREATES = 600


def test_a_watch_resumed_from_bookmarks_misses_no_event(api_server, request):
    ns = create_namespace(api_server, request, "bm")

    async def run() -> set[str]:
        client = Client(api_server.client_config())
        cms = client.resource(CONFIGMAPS)
        try:
            rv = (await cms.list(ns))["metadata"]["resourceVersion"]
            seen: set[str] = set()
            writing = True

            async def watcher() -> None:
                nonlocal rv
                while True:
                    # Short watches, so that many end while creates are still streaming in.
                    async for typ, obj in cms.watch(ns, resource_version=rv, timeout_seconds=1):
                        rv = obj["metadata"]["resourceVersion"]
                        if typ == "ADDED":
                            seen.add(obj["metadata"]["name"])
                    if not writing and len(seen) >= CREATES:
                        return
                    if not writing and len(seen) < CREATES:
                        # One more watch after the writes: anything still missing is lost.
                        async for typ, obj in cms.watch(ns, resource_version=rv, timeout_seconds=1):
                            if typ == "ADDED":
                                seen.add(obj["metadata"]["name"])
                        return

            async def creator(first: int) -> None:
                for i in range(first, CREATES, 8):
                    await cms.create({"metadata": {"name": f"cm{i}"}}, ns)
            task = asyncio.create_task(watcher())
            await asyncio.gather(*(creator(k) for k in range(8)))
            writing = False
            await asyncio.wait_for(task, 30)
            return seen
        finally:
            await client.close()
    seen = asyncio.run(run())
    missing = sorted({f"cm{i}" for i in range(CREATES)} - seen)
    assert not missing, f"{len(missing)} creates never seen, e.g. {missing[:5]}"
