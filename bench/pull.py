"""Image pull benchmark (not run by CI): a ~5 MB image from a registry on a loopback port.

Starts Debian's `docker-registry` on 127.0.0.1 (tests/oci_registry.py), builds an image from
busybox-static plus a layer of incompressible data with `umoci`, pushes it with `skopeo`,
then pulls it with the node's puller (`kubelite.images.pull.Puller`, offline mode, the code
path a pod's image pull takes) into a fresh image store each round: resolve, download,
verify and unpack. Prints the compressed image size and p50/max per pull.

    python bench/pull.py [--rounds 10] [--megabytes 4]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from oci_registry import ImageBuilder, Registry, missing_tools, push
from rich.console import Console
from rich.table import Table

from kubelite.images.pull import Puller
from kubelite.images.store import ImageStore


async def _pull_rounds(ref: str, root: Path, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        store = ImageStore(str(root / f"store-{i}"), builtins=False)
        start = time.perf_counter()
        image = await Puller(store, offline=True).pull(ref)
        times.append(time.perf_counter() - start)
        assert os.path.isfile(os.path.join(image.rootfs, "bin", "busybox")), "pulled image has no busybox"
    return times


def main() -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--megabytes", type=float, default=4.0, help="incompressible data added to busybox")
    args = ap.parse_args()
    missing = missing_tools()
    if missing:
        print(f"missing tools: {', '.join(missing)} (apt-get install skopeo umoci docker-registry busybox-static)")
        return 2
    console = Console()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-pull-") as tmp:
        reg = Registry.start(Path(tmp) / "registry")
        try:
            builder = ImageBuilder(Path(tmp) / "build")
            # base64 of random bytes: gzip gains little on it, so the layer stays about this size.
            blob = base64.b64encode(os.urandom(int(args.megabytes * 2**20 * 3 / 4))).decode()
            src = builder.busybox("big", entrypoint=["/bin/sh", "-c"], cmd=["sleep 3600"],
                                  files={"/data/blob.txt": blob})
            push(src, reg, "bench/big:1")
            manifest = builder.manifest("big")
            size = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
            ref = f"{reg.host}/bench/big:1"
            times = asyncio.run(_pull_rounds(ref, Path(tmp) / "pulls", args.rounds))
        finally:
            reg.stop()
    table = Table(title=f"pull of {ref.split('/', 1)[1]} from a loopback registry: "
                        f"{size / 1e6:.1f} MB compressed, {len(manifest['layers'])} layers (ms)")
    for col in ("rounds", "p50", "max", "MB/s at p50"):
        table.add_column(col, justify="right")
    p50 = statistics.median(times)
    table.add_row(str(len(times)), f"{p50 * 1000:.0f}", f"{max(times) * 1000:.0f}", f"{size / 1e6 / p50:.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
