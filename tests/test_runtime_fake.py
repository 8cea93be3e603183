"""The fake (kwok-like) runtime: records instead of processes."""
import os

import pytest

from kubelite.images.store import ImageNotFound
from kubelite.node.runtime import logs
from kubelite.node.runtime.fake import FakeRuntime


async def test_fake_runtime_runs_nothing_but_behaves(tmp_path):
    rt = FakeRuntime(str(tmp_path), delay=0.01)
    with pytest.raises(ImageNotFound):
        await rt.pull("jocatalin/kubernetes-bootcamp:v10")
    image = await rt.pull("jocatalin/kubernetes-bootcamp:v1")
    p = {"metadata": {"name": "f", "namespace": "default", "uid": "f1"}, "spec": {}}
    sb = await rt.create_sandbox(p)
    assert sb.ip.startswith("10.244.0.")
    handle = await rt.start_container(sb, p, {"name": "c"}, image, {})
    assert rt.is_running(handle)
    assert logs.read_logs(rt.log_path(handle)) == b""
    session = await rt.exec(sb, handle, ["ls"], tty=False)
    assert await session.stdout.read() == b"" and await session.wait() == 0
    await rt.stop_container(handle, 30)
    info = await rt.wait(handle)
    assert (info.exit_code, info.reason) == (0, "Completed")
    await rt.cleanup_all()
    assert not os.path.exists(os.path.join(str(tmp_path), "images", "rootfs", image.digest.split(":")[1]))
