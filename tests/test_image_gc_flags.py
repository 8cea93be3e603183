"""The kubelet's image GC flags on `kubelite server` and `kubelite agent`: validated as the
kubelet validates them, and reaching the garbage collector (what it removes changes)."""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import pytest
from conftest import start_server

from kubelite.images import gc as image_gc
from kubelite.images.layers import build_layer
from kubelite.images.store import GCPolicy, ImageStore


def _parse(*flags: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    image_gc.add_flags(p)
    return p.parse_args(list(flags))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=60)


def test_flag_defaults_are_the_kubelets():
    policy = image_gc.policy_from_args(_parse())
    assert (policy.high_percent, policy.low_percent, policy.min_age) == (85, 80, 120.0)
    policy = image_gc.policy_from_args(_parse("--image-gc-high-threshold", "60", "--image-gc-low-threshold", "40",
                                              "--image-minimum-gc-age", "1m30s"))
    assert (policy.high_percent, policy.low_percent, policy.min_age) == (60, 40, 90.0)


@pytest.mark.parametrize("flags, message", [
    (("--image-gc-high-threshold", "80", "--image-gc-low-threshold", "80"),
     "invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) 80 must be less than "
     "imageGCHighThresholdPercent (--image-gc-high-threshold) 80"),
    (("--image-gc-high-threshold", "101"),
     "invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) 101 must be between 0 and "
     "100, inclusive"),
    (("--image-gc-low-threshold", "-1"),
     "invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) -1 must be between 0 and "
     "100, inclusive"),
])
def test_server_and_agent_refuse_invalid_thresholds_with_the_kubelets_message(tmp_path, flags, message):
    data = tmp_path / "data"
    p = _cli("server", "--runtime", "fake", "--data-dir", str(data), *flags)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"kubelite: {message}" in p.stderr, p.stderr
    assert not data.exists()  # refused before anything was made
    p = _cli("agent", "--server", "https://127.0.0.1:1", "--token", "x", "--runtime", "fake",
             "--data-dir", str(tmp_path / "agent"), *flags)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"kubelite: {message}" in p.stderr, p.stderr


def test_a_bad_minimum_gc_age_is_a_usage_error():
    p = _cli("server", "--image-minimum-gc-age", "2 minutes")
    assert p.returncode == 2
    assert "--image-minimum-gc-age" in p.stderr and "invalid duration" in p.stderr, p.stderr


def _store_with_two_old_images(root: str) -> ImageStore:
    store = ImageStore(root, builtins=False)
    for i, name in enumerate(("a:1", "b:1")):
        img = store.add_image(name, [build_layer({f"d/{i}": (b"x" * 1000, 0o644)})], {"Cmd": ["true"]})
        store.unpack(img)
        t = time.time() - 600 + i  # a used before b, both 10 minutes ago
        os.utime(os.path.join(root, "used", img.digest.split(":")[1]), (t, t))
    return store


def test_thresholds_from_the_flags_decide_what_the_collector_removes(tmp_path):
    # The disk is 70 % full and stays so: the kubelet's defaults (85 %) leave everything.
    usage = (70, 100)
    store = _store_with_two_old_images(str(tmp_path / "default"))
    assert store.garbage_collect([], image_gc.policy_from_args(_parse()), usage=lambda _r: usage) == []
    assert len(store.list_images()) == 2
    # A high threshold of 60 % starts a collection; it frees towards the low threshold, least
    # recently used first (the usage never drops here, so every unused image goes).
    store = _store_with_two_old_images(str(tmp_path / "low"))
    policy = image_gc.policy_from_args(_parse("--image-gc-high-threshold", "60", "--image-gc-low-threshold", "50"))
    assert store.garbage_collect(["docker.io/library/b:1"], policy, usage=lambda _r: usage) == [
        "docker.io/library/a:1"]
    assert [i.ref for i in store.list_images()] == ["docker.io/library/b:1"]
    # A minimum age longer than the images' idle time keeps them all.
    store = _store_with_two_old_images(str(tmp_path / "age"))
    policy = image_gc.policy_from_args(_parse("--image-gc-high-threshold", "60", "--image-gc-low-threshold", "50",
                                              "--image-minimum-gc-age", "1h"))
    assert store.garbage_collect([], policy, usage=lambda _r: usage) == []


def test_the_gc_loop_hands_the_policy_to_the_store():
    seen: list[tuple[set[str], GCPolicy | None]] = []
    policy = GCPolicy(high_percent=50, low_percent=10, min_age=5)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        class Store:
            def garbage_collect(self, in_use, policy=None):
                seen.append((set(in_use), policy))
                loop.call_soon_threadsafe(stop.set)
                return []
        await asyncio.wait_for(image_gc.run(Store(), policy, lambda: {"img:1"}, stop, period=0.01), 10)
    asyncio.run(main())
    assert seen and seen[0] == ({"img:1"}, policy)


def test_server_flags_reach_the_node_agents_collector(tmp_path):
    """With a high threshold of 1 % (any disk is fuller) and no minimum age, an imported image
    no pod uses is collected by the running server's agent."""
    srv = start_server(tmp_path, "--runtime", "process", "--network", "host", "--disable",
                       "controllers,scheduler,proxy,dns",
                       "--image-gc-high-threshold", "1", "--image-gc-low-threshold",
                       "0", "--image-minimum-gc-age", "0s", "--image-gc-period", "0.5")
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "hello.txt").write_text("hi\n")
        p = _cli("image", "import", "unused/gc-me:1", str(src), "--cmd", "true", "--data-dir", str(srv.data_dir))
        assert p.returncode == 0, p.stderr
        store = ImageStore(os.path.join(srv.data_dir, "images"), builtins=False)

        def gone() -> bool:
            return all("gc-me" not in i.ref for i in store.list_images())
        srv.wait_for(gone, 60, what="the unused image to be garbage-collected")
        # The collector logs what it removed once the removal is done: the line may lag the check.
        srv.wait_for(lambda: "image garbage collection: removed docker.io/unused/gc-me:1" in srv.log_path.read_text(),
                     30, what="the collector's log line")
    finally:
        srv.stop()
