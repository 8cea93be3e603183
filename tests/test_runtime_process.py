"""The process runtime: real host processes on 127.x pod addresses."""
import asyncio
import os
import urllib.request
from pathlib import Path

import pytest

from kubelite.images.store import ImageNotFound
from kubelite.node.runtime import logs
from kubelite.node.runtime.base import StartError, container_argv, expand_vars
from kubelite.node.runtime.process import ProcessRuntime, _session_members

BOOTCAMP = "jocatalin/kubernetes-bootcamp:v2"


@pytest.fixture
async def rt(tmp_path):
    runtime = ProcessRuntime(str(tmp_path), network="host")
    yield runtime
    await runtime.cleanup_all()


def pod(name, uid):
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": {}}


async def wait_for_log(path, needle, timeout=20):
    """Follow the container log until a line containing `needle` shows up; return it."""
    async def scan():
        async for line in logs.follow_logs(path, poll=0.02):
            if needle in line:
                return line
    return await asyncio.wait_for(scan(), timeout)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def shell(rt, uid, script, name="c"):
    p = pod(f"pod-{uid}", uid)
    sb = await rt.create_sandbox(p)
    image = await rt.pull(BOOTCAMP)
    handle = await rt.start_container(sb, p, {"name": name, "command": ["sh", "-c", script]}, image, {})
    return sb, handle


async def test_bootcamp_serves_on_its_pod_ip_and_logs_like_the_node_app(rt):
    p = pod("kubernetes-bootcamp-abc", "uid-boot")
    sb = await rt.create_sandbox(p)
    assert sb.ip.startswith("127.1.")
    image = await rt.pull(BOOTCAMP)
    handle = await rt.start_container(sb, p, {"name": "kubernetes-bootcamp"}, image, {})
    banner = await wait_for_log(handle.log_path, b"Started At")
    assert b"| Running On:  kubernetes-bootcamp-abc \n" in banner
    url = f"http://{sb.ip}:8080/"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert body == b"Hello Kubernetes bootcamp! | Running on: kubernetes-bootcamp-abc | v=2\n"
    line = await wait_for_log(handle.log_path, b"Total Requests")
    text = line.decode()
    assert text.startswith("Running On: kubernetes-bootcamp-abc | Total Requests: 1 | App Uptime: ")
    assert " seconds | Log Time: " in text and text.rstrip().endswith("Z")
    # The log file itself is CRI format.
    first = Path(handle.log_path).read_bytes().split(b"\n", 1)[0].split(b" ", 3)
    assert first[1:3] == [b"stdout", b"F"] and first[0].endswith(b"Z")
    await rt.stop_container(handle, grace=10)
    info = await rt.wait(handle)
    assert (info.exit_code, info.signal, info.reason) == (143, 15, "Error")
    assert not alive(handle.pid)


async def test_bootcamp_answers_while_a_slow_client_holds_a_connection(rt):
    p = pod("boot-slow", "uid-slow")
    sb = await rt.create_sandbox(p)
    handle = await rt.start_container(sb, p, {"name": "app"}, await rt.pull(BOOTCAMP), {})
    await wait_for_log(handle.log_path, b"Started At")
    slow_reader, slow_writer = await rt.open_port(sb, 8080)
    slow_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    await slow_writer.drain()
    reader, writer = await rt.open_port(sb, 8080)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 10)
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"Running on: boot-slow | v=2\n")
    writer.close()
    slow_writer.close()


async def test_sigterm_ignoring_process_is_killed_after_grace(rt):
    sb, handle = await shell(rt, "uid-term", "trap '' TERM; echo ready; while :; do sleep 1; done")
    await wait_for_log(handle.log_path, b"ready")
    await rt.stop_container(handle, grace=0.3)
    info = await rt.wait(handle)
    assert (info.exit_code, info.signal) == (137, 9)
    assert _session_members(handle.pid) == []


async def test_forking_process_leaves_no_children(rt):
    script = ("sleep 300 & echo child=$!; "
              "python3 -c 'import os,time; os.setpgid(0,0); print(\"pg\", os.getpid(), flush=True); time.sleep(300)' & "
              "echo ready; wait")
    sb, handle = await shell(rt, "uid-fork", script)
    await wait_for_log(handle.log_path, b"ready")
    pg_line = await wait_for_log(handle.log_path, b"pg ")
    members = _session_members(handle.pid)
    assert len(members) >= 3
    await rt.stop_container(handle, grace=5)
    assert not any(alive(pid) for pid in members)
    assert int(pg_line.split()[-1]) in members


async def test_children_die_with_the_main_process(rt):
    sb, handle = await shell(rt, "uid-orphan", "sleep 300 & echo child=$!; exit 3")
    info = await rt.wait(handle)
    assert (info.exit_code, info.reason) == (3, "Error")
    line = logs.read_logs(handle.log_path).decode()
    child = int(line.split("child=")[1].split()[0])
    assert not alive(child)


async def test_command_and_args_follow_kubernetes_semantics(rt):
    p = pod("argv", "uid-argv")
    sb = await rt.create_sandbox(p)
    image = await rt.pull(BOOTCAMP)
    c = {"name": "c", "command": ["sh", "-c"],
         "args": ['echo "$GREETING $(GREETING)" \'$$(GREETING)\' "host=$HOSTNAME ip=$POD_IP pwd=$(pwd)"']}
    handle = await rt.start_container(sb, p, c, image, {"GREETING": "hi"})
    assert (await rt.wait(handle)).reason == "Completed"
    out = logs.read_logs(handle.log_path).decode()
    assert out.startswith(f"hi hi $(GREETING) host=argv ip={sb.ip} pwd=")
    assert out.rstrip().endswith("/containers/c/0/app")  # image WorkingDir inside the container root


def test_argv_rules():
    from kubelite.images.store import ImageConfig
    image = ImageConfig(ref="r", digest="d", id="i", entrypoint=["ep"], cmd=["c1"])
    assert container_argv(image, {}, {}) == ["ep", "c1"]
    assert container_argv(image, {"args": ["a"]}, {}) == ["ep", "a"]
    assert container_argv(image, {"command": ["x"]}, {}) == ["x"]
    assert container_argv(image, {"command": ["x"], "args": ["$(A)"]}, {"A": "1"}) == ["x", "1"]
    assert expand_vars("$(A)-$(B)-$$(A)-$", {"A": "a"}) == "a-$(B)-$(A)-$"


async def test_unknown_command_is_a_start_error(rt):
    p = pod("bad", "uid-bad")
    sb = await rt.create_sandbox(p)
    image = await rt.pull(BOOTCAMP)
    with pytest.raises(StartError) as err:
        await rt.start_container(sb, p, {"name": "c", "command": ["foo-not-here"]}, image, {})
    assert 'exec: "foo-not-here": executable file not found in $PATH' in str(err.value)
    assert err.value.exit_code == 128 and err.value.reason == "StartError"


async def test_missing_image_does_not_pull(rt):
    with pytest.raises(ImageNotFound) as err:
        await rt.pull("jocatalin/kubernetes-bootcamp:v10")
    # The tests run offline (conftest): the registry is not asked, and the reason says why.
    assert "docker.io/jocatalin/kubernetes-bootcamp:v10: not found: node is offline" in str(err.value)


async def test_exec_without_tty_has_separate_streams_and_stdin(rt):
    sb, handle = await shell(rt, "uid-exec", "echo ready; exec sleep 300")
    await wait_for_log(handle.log_path, b"ready")
    session = await rt.exec(sb, handle, ["sh", "-c", "cat; echo err >&2; exit 4"], tty=False)
    await session.write(b"from stdin\n")
    await session.close_stdin()
    assert await session.stdout.read() == b"from stdin\n"
    assert await session.stderr.read() == b"err\n"
    assert await session.wait() == 4


async def test_exec_with_tty_is_one_stream_and_resizes(rt):
    sb, handle = await shell(rt, "uid-tty", "echo ready; exec sleep 300")
    await wait_for_log(handle.log_path, b"ready")
    session = await rt.exec(sb, handle, ["sh"], tty=True)
    assert session.stderr is None
    session.resize(100, 42)
    await session.write(b"stty size; echo $HOSTNAME; tty >/dev/null && echo is-a-tty; exit 5\n")
    out = await asyncio.wait_for(session.stdout.read(), 10)
    assert b"42 100" in out and b"pod-uid-tty" in out and b"is-a-tty" in out
    assert await session.wait() == 5


async def test_cleanup_all_leaves_nothing_behind(tmp_path):
    runtime = ProcessRuntime(str(tmp_path), network="host")
    handles = []
    for i in range(3):
        sb, handle = await shell(runtime, f"uid-clean-{i}", "sleep 300 & echo ready; wait")
        handles.append(handle)
    for handle in handles:
        await wait_for_log(handle.log_path, b"ready")
    pids = [pid for h in handles for pid in _session_members(h.pid)]
    assert len(pids) >= 6
    await runtime.cleanup_all()
    assert not any(alive(pid) for pid in pids)
    assert os.listdir(tmp_path / "pods") == []
