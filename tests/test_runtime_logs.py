"""CRI container logs: format, rotation, and kubectl logs semantics (tail, since, timestamps, follow)."""
import asyncio
import os
from pathlib import Path

from kubelite.node.runtime import logs
from kubelite.node.runtime.process import ProcessRuntime


def write_lines(path, n, **kw):
    w = logs.LogWriter(path, **kw)
    for i in range(n):
        w.write("stdout" if i % 2 == 0 else "stderr", f"line {i}\n".encode())
    return w


def test_records_are_cri_lines(tmp_path):
    path = str(tmp_path / "0.log")
    w = logs.LogWriter(path)
    w.write("stdout", b"hello\nwor")
    w.write("stdout", b"ld\n")
    w.write("stderr", b"no newline")
    w.close()
    records = [logs.parse_record(r) for r in Path(path).read_bytes().splitlines(keepends=True)]
    assert [(s, full, c) for _, s, full, c in records] == [
        ("stdout", True, b"hello"), ("stdout", True, b"world"), ("stderr", True, b"no newline")]
    assert all(len(t) == 30 and t.endswith("Z") for t, *_ in records)


def test_long_lines_are_split_and_joined_back(tmp_path):
    path = str(tmp_path / "0.log")
    w = logs.LogWriter(path)
    w.write("stdout", b"x" * (logs.MAX_LINE * 2 + 10) + b"\n")
    w.close()
    tags = [r.split(b" ")[2] for r in Path(path).read_bytes().splitlines()]
    assert tags == [b"P", b"P", b"F"]
    assert logs.read_logs(path) == b"x" * (logs.MAX_LINE * 2 + 10) + b"\n"


def test_tail_since_and_timestamps(tmp_path):
    path = str(tmp_path / "0.log")
    write_lines(path, 10).close()
    assert logs.read_logs(path, tail=2) == b"line 8\nline 9\n"
    assert logs.read_logs(path, tail=0) == b""
    assert logs.read_logs(path).count(b"\n") == 10
    stamped = logs.read_logs(path, tail=1, timestamps=True).decode()
    ts, text = stamped.split(" ", 1)
    assert text == "line 9\n" and logs.parse_time_ns(ts) > 0
    assert logs.read_logs(path, since="2999-01-01T00:00:00Z") == b""
    assert logs.read_logs(path, since=ts) == b"line 9\n"
    assert logs.read_logs(path, limit_bytes=8) == b"line 0\nl"


def test_rotation_caps_size_and_keeps_order(tmp_path):
    path = str(tmp_path / "0.log")
    write_lines(path, 500, max_size=2000, max_files=3).close()
    files = logs.log_files(path)
    assert files == [path + ".2", path + ".1", path]
    assert all(os.path.getsize(f) <= 2000 for f in files)
    numbers = [int(line.split()[1]) for line in logs.read_logs(path).decode().splitlines()]
    assert numbers == sorted(numbers) and numbers[-1] == 499 and numbers[0] > 0
    assert logs.read_logs(path, tail=3) == b"line 497\nline 498\nline 499\n"


async def test_follow_yields_backlog_then_new_lines_across_rotation(tmp_path):
    path = str(tmp_path / "0.log")
    w = write_lines(path, 5, max_size=400, max_files=2)
    finished = asyncio.Event()
    got = []

    async def follow():
        async for chunk in logs.follow_logs(path, tail=2, done=finished.is_set, poll=0.01):
            got.append(chunk)
            if len(got) == 2:  # the tail of the backlog is out; now produce more
                produce.set()

    produce = asyncio.Event()
    task = asyncio.create_task(follow())
    await produce.wait()
    for i in range(5, 40):  # enough to rotate several times
        w.write("stdout", f"line {i}\n".encode())
        await asyncio.sleep(0)
    w.close()
    finished.set()
    await asyncio.wait_for(task, 10)
    assert got[:2] == [b"line 3\n", b"line 4\n"]
    assert got[2:] and got[-1] == b"line 39\n"
    numbers = [int(c.split()[1]) for c in got]
    assert numbers == sorted(numbers)


async def test_flooding_process_is_bounded_and_rotated(tmp_path):
    rt = ProcessRuntime(str(tmp_path), network="host", log_max_size=256 * 1024, log_max_files=3)
    try:
        p = {"metadata": {"name": "flood", "namespace": "default", "uid": "flood"}, "spec": {}}
        sb = await rt.create_sandbox(p)
        image = await rt.pull("jocatalin/kubernetes-bootcamp:v1")
        script = "import sys\nfor _ in range(200): sys.stdout.write('y' * 50000)\nprint('end')"
        handle = await rt.start_container(sb, p, {"name": "c", "command": ["python3", "-c", script]}, image, {})
        assert (await rt.wait(handle)).exit_code == 0
        files = logs.log_files(rt.log_path(handle))
        assert len(files) == 3 and all(os.path.getsize(f) <= 256 * 1024 for f in files)
        last = logs.read_logs(rt.log_path(handle), tail=1)
        assert last.endswith(b"yend\n") and len(last) < 10_000_001
    finally:
        await rt.cleanup_all()


async def test_previous_instance_keeps_its_own_log(tmp_path):
    rt = ProcessRuntime(str(tmp_path), network="host")
    try:
        p = {"metadata": {"name": "restart", "namespace": "default", "uid": "restart"}, "spec": {}}
        sb = await rt.create_sandbox(p)
        image = await rt.pull("jocatalin/kubernetes-bootcamp:v1")
        first = await rt.start_container(sb, p, {"name": "c", "command": ["echo", "first"]}, image, {})
        await rt.wait(first)
        second = await rt.start_container(sb, p, {"name": "c", "command": ["echo", "second"]}, image, {})
        await rt.wait(second)
        assert (first.attempt, second.attempt) == (0, 1)
        assert logs.read_logs(rt.log_path(first)) == b"first\n"
        assert logs.read_logs(rt.log_path(second)) == b"second\n"
    finally:
        await rt.cleanup_all()
