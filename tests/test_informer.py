"""Shared informers (kubelite.client.informer) against the in-memory fake API's watch."""
from __future__ import annotations

import logging

from kubelite.api.resources import PODS
from kubelite.client.informer import Informer
from tests.fakeapi import FakeAPI, until


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_informer_recovers_from_an_unexpected_watch_failure(caplog):
    api = FakeAPI()
    api.create(PODS, pod("before"), "default")
    inf = Informer(api, PODS)
    seen: list[str] = []
    inf.add_handler(lambda o: seen.append(o["metadata"]["name"]))
    with caplog.at_level(logging.ERROR, logger="kubelite.client.informer"):
        inf.start()
        try:
            await until(lambda: inf.get("default/before") is not None, what="the first list")
            # A failure no handler caused and the informer does not expect: the watch stream
            # itself raises (what an aiohttp or decoding bug would look like).
            api.failures[("watch", "pods")] = RuntimeError("injected watch fault")
            api.create(PODS, pod("during"), "default")  # wakes the watch, which now fails

            def crash_logged() -> bool:
                return any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)
            await until(crash_logged, what="the crash to be logged")
            assert "RuntimeError: injected watch fault" in caplog.text
            assert "Traceback (most recent call last)" in caplog.text
            del api.failures[("watch", "pods")]
            api.create(PODS, pod("after"), "default")
            await until(lambda: inf.get("default/after") is not None, what="a new pod in the cache after the fault")
            # The restart re-listed: what happened while the watch was down is there too.
            assert inf.get("default/during") is not None
            api.create(PODS, pod("later"), "default")
            await until(lambda: inf.get("default/later") is not None, what="the watch to deliver again")
            assert seen == ["before", "during", "after", "later"]
        finally:
            await inf.stop()
