"""Each server claims a service range of its own, also without the kernel data path.

Without nftables the userspace proxy listens on loopback ClusterIPs; two servers on one
machine used to share 127.96.0.0/16 and the second could not serve the ``kubernetes``
Service. Now each takes a /20 block of 127.96.0.0/12 and a range held by a running server
is refused at start.
"""
from __future__ import annotations

import ipaddress
import multiprocessing
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest
from conftest import free_port, start_server

from kubelite.proxy import ranges

SUPERNET = ipaddress.ip_network(ranges.LOOPBACK_SUPERNET)


@pytest.fixture
def locks(tmp_path, monkeypatch):
    """A private lock directory, so these tests do not see the machine's other servers."""
    d = tmp_path / "locks"
    monkeypatch.setattr(ranges, "LOCK_DIR", str(d))
    return d


def data_dir(tmp_path, name: str) -> str:
    d = tmp_path / name
    d.mkdir()
    return str(d)


def test_first_server_takes_the_first_block_and_remembers_it(tmp_path, locks):
    d = data_dir(tmp_path, "a")
    rng = ranges.claim_loopback(d)
    try:
        assert rng.cidr == "127.96.0.0/20" and rng.kubernetes_ip == "127.96.0.1"
        assert ranges.remembered(d) == "127.96.0.0/20"
    finally:
        rng.release()
    again = ranges.claim_loopback(d)  # a restart keeps its ClusterIPs
    assert again.cidr == "127.96.0.0/20"
    again.release()


def test_two_live_servers_never_share_a_block(tmp_path, locks):
    a = ranges.claim_loopback(data_dir(tmp_path, "a"))
    b = ranges.claim_loopback(data_dir(tmp_path, "b"))
    try:
        na, nb = ipaddress.ip_network(a.cidr), ipaddress.ip_network(b.cidr)
        assert not na.overlaps(nb) and na.subnet_of(SUPERNET) and nb.subnet_of(SUPERNET)
    finally:
        a.release()
        b.release()


def test_a_stopped_servers_block_is_left_for_it(tmp_path, locks):
    a_dir = data_dir(tmp_path, "a")
    a = ranges.claim_loopback(a_dir)
    a.release()  # stopped; its data directory stays
    b = ranges.claim_loopback(data_dir(tmp_path, "b"))
    try:
        assert b.cidr != a.cidr
    finally:
        b.release()
    again = ranges.claim_loopback(a_dir)
    assert again.cidr == a.cidr
    again.release()


def test_a_gone_data_directorys_block_is_reused_before_a_stopped_servers(tmp_path, locks, monkeypatch):
    monkeypatch.setattr(ranges, "LOOPBACK_SUPERNET", "127.96.0.0/19")  # two blocks only
    gone, kept = data_dir(tmp_path, "gone"), data_dir(tmp_path, "kept")
    first = ranges.claim_loopback(gone)
    second = ranges.claim_loopback(kept)
    first.release()
    second.release()
    os.rename(gone, gone + ".removed")
    third = ranges.claim_loopback(data_dir(tmp_path, "third"))
    try:
        assert third.cidr == first.cidr
    finally:
        third.release()
    held = [ranges.claim_loopback(kept), ranges.claim_loopback(data_dir(tmp_path, "fourth"))]
    try:
        with pytest.raises(ranges.RangeError, match="every service range in 127.96.0.0/19 is held"):
            ranges.claim_loopback(data_dir(tmp_path, "fifth"))
    finally:
        for r in held:
            r.release()


def test_when_every_block_is_kept_the_one_claimed_longest_ago_is_reused(tmp_path, locks, monkeypatch):
    """Every block kept by a stopped server's data directory (a machine full of old test runs):
    a new server takes the block claimed longest ago, not the one a server just stopped with and
    wants back at its restart."""
    monkeypatch.setattr(ranges, "LOOPBACK_SUPERNET", "127.96.0.0/18")  # four blocks
    dirs = [data_dir(tmp_path, f"old{i}") for i in range(4)]
    claimed = []
    for d in dirs:
        r = ranges.claim_loopback(d)
        claimed.append(r.cidr)
        r.release()
    # Claimed in order old0..old3, but the lock files' times say old2 was the first, then old0, old3, old1:
    # the order of the times, not of the blocks, must decide.
    for n, i in enumerate((2, 0, 3, 1)):
        lock = next(f for f in locks.iterdir() if f.name == f"service-cidr-{claimed[i].replace('/', '_')}.lock")
        os.utime(lock, (1_000_000 + n, 1_000_000 + n))
    fresh = ranges.claim_loopback(data_dir(tmp_path, "new"))
    try:
        assert fresh.cidr == claimed[2]
    finally:
        fresh.release()


def test_a_block_with_several_lock_files_counts_its_most_recent_kept_claim(tmp_path, locks, monkeypatch):
    """Servers of one etcd cluster leave a lock file each on their shared block: one of them with a
    data directory that is gone must not make the block look free to take first."""
    monkeypatch.setattr(ranges, "LOOPBACK_SUPERNET", "127.96.0.0/19")  # two blocks
    locks.mkdir()
    a, b = "127.96.0.0_20", "127.96.16.0_20"
    lock_files = {f"service-cidr-{b}.lock": (data_dir(tmp_path, "old"), 1_000_000),
                  f"service-cidr-{a}.lock": (data_dir(tmp_path, "recent"), 2_000_000),
                  f"service-cidr-{a}+zzzzzzzzzzzz.lock": (str(tmp_path / "gone"), 500_000)}
    for name, (owner, when) in lock_files.items():
        (locks / name).write_text(owner + "\ncluster=c1\nproxy=0\n")
        os.utime(locks / name, (when, when))
    # The block's plain lock file is read before the gone server's (whatever order the
    # directory gives): the order in which a last-read-wins scan gets it wrong.
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda d: sorted(real_listdir(d), reverse=True))
    fresh = ranges.claim_loopback(data_dir(tmp_path, "new"))
    try:
        assert fresh.cidr == b.replace("_", "/")
    finally:
        fresh.release()


def test_a_range_a_running_server_holds_is_refused(tmp_path, locks):
    a = ranges.claim_loopback(data_dir(tmp_path, "a"))
    try:
        with pytest.raises(ranges.RangeError, match=r"overlaps 127\.96\.0\.0/20, used by the running kubelite server"):
            ranges.claim_loopback(data_dir(tmp_path, "b"), "127.96.0.0/16")
    finally:
        a.release()
    ok = ranges.claim_loopback(data_dir(tmp_path, "c"), "127.96.0.0/16")
    assert ok.cidr == "127.96.0.0/16"
    ok.release()


def test_a_cluster_from_before_keeps_the_old_default(tmp_path, locks):
    rng = ranges.claim_loopback(data_dir(tmp_path, "old"), legacy=True)
    assert rng.cidr == ranges.LOOPBACK_DEFAULT
    rng.release()


def _api_version(srv, ip: str) -> str:
    # Verified against this server's own CA: the answer can only come from that server.
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    with urllib.request.urlopen(f"https://{ip}/version", context=ctx, timeout=5) as r:
        return r.read().decode()


def test_two_userspace_servers_on_one_machine_both_work(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = start_server(tmp_path / "one", "--runtime", "fake", "--proxy-mode", "userspace")
    try:
        two = start_server(tmp_path / "two", "--runtime", "fake", "--proxy-mode", "userspace")
        try:
            ips = []
            for srv in (one, two):
                ip = srv.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
                assert ipaddress.ip_address(ip) in SUPERNET
                ips.append(ip)
                assert '"gitVersion"' in srv.wait_for(lambda ip=ip, srv=srv: _try(srv, ip),
                                                      what=f"the kubernetes Service at {ip}")
            assert ips[0] != ips[1]
            taken = (one.data_dir / "service-cidr").read_text().strip()
            p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "third"),
                                "--api-port", str(free_port()), "--runtime", "fake", "--service-cidr", taken],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode != 0 and f"overlaps {taken}" in p.stderr + p.stdout, p.stderr + p.stdout
        finally:
            two.stop()
    finally:
        one.stop()


def _claim_in_child(claim, d: str, requested: str, ready, done, out) -> None:
    """One would-be server: wait for the others, claim, report, and hold the range until all have."""
    ready.wait()
    try:
        rng = claim(d, requested)
        out.put((d, rng.cidr))
    except ranges.RangeError as e:
        out.put((d, f"refused: {e}"))
        rng = None
    done.wait()
    if rng is not None:
        rng.release()


@pytest.mark.parametrize("claim, supernet, wide", [
    (ranges.claim, ranges.SUPERNET, "10.96.0.0/16"),
    (ranges.claim_loopback, ranges.LOOPBACK_SUPERNET, "127.96.0.0/16"),
], ids=["kernel", "loopback"])
def test_servers_starting_at_once_claim_distinct_ranges(tmp_path, locks, claim, supernet, wide):
    # Several servers start at the same moment: most pick a free block, one asks for a range
    # covering the first blocks, one asks for exactly the first block. Whatever order they
    # run in, the ranges held at the end never overlap, and every server that picked freely
    # got a block (there are plenty).
    ctx = multiprocessing.get_context("fork")
    for rnd in range(6):
        wants = ["", "", "", "", "", "", wide, str(next(ipaddress.ip_network(supernet).subnets(new_prefix=20)))]
        dirs = [data_dir(tmp_path, f"r{rnd}-{i}") for i in range(len(wants))]
        ready, done, out = ctx.Barrier(len(wants)), ctx.Barrier(len(wants) + 1), ctx.Queue()
        procs = [ctx.Process(target=_claim_in_child, args=(claim, d, w, ready, done, out))
                 for d, w in zip(dirs, wants, strict=True)]
        for p in procs:
            p.start()
        try:
            got = dict(out.get(timeout=60) for _ in procs)
        finally:
            done.wait(timeout=60)
            for p in procs:
                p.join(60)
        held = {d: c for d, c in got.items() if not c.startswith("refused")}
        for d, w in zip(dirs, wants, strict=True):
            if not w:
                assert d in held, got[d]
        nets = [ipaddress.ip_network(c) for c in held.values()]
        clashes = [(a, b) for i, a in enumerate(nets) for b in nets[i + 1:] if a.overlaps(b)]
        assert clashes == [], got


def _try(srv, ip: str) -> str:
    try:
        return _api_version(srv, ip)
    except OSError:
        return ""


# -- NodePorts: a port another server (or program) on this host holds is not handed out ------

def test_port_holder_keeps_node_ports_taken_until_released():
    from kubelite.proxy.ports import PortHolder, port_free
    port = free_port()
    holder = PortHolder()
    try:
        holder.hold({("TCP", port), ("UDP", port)})
        assert holder.held() == {("TCP", port), ("UDP", port)}
        assert not port_free(port, "TCP") and not port_free(port, "UDP")
        holder.hold({("UDP", port)})
        assert port_free(port, "TCP") and not port_free(port, "UDP")
    finally:
        holder.close()
    assert port_free(port, "TCP") and port_free(port, "UDP")


def test_allocator_skips_node_ports_held_on_this_host():
    from kubelite.apiserver.allocators import NODE_PORT_RANGE, ServiceAllocator
    lo, _ = NODE_PORT_RANGE
    asked: list[tuple[int, str]] = []

    def even_only(port: int, protocol: str) -> bool:
        asked.append((port, protocol))
        return port % 2 == 0  # odd ports are "held by another server"

    alloc = ServiceAllocator("127.96.0.0/20", port_free=even_only)
    for n in range(20):
        svc = {"metadata": {"name": f"web{n}"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "UDP"}]}}
        alloc.allocate(svc, None, [])
        assert svc["spec"]["ports"][0]["nodePort"] % 2 == 0
    assert asked and all(proto == "UDP" for _, proto in asked)
    # An explicit port is the user's choice: not second-guessed.
    asked.clear()
    svc2 = {"metadata": {"name": "b"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": lo + 1}]}}
    alloc.allocate(svc2, None, [svc])
    assert svc2["spec"]["ports"][0]["nodePort"] == lo + 1 and not asked


def test_servers_of_one_cluster_share_its_block_and_one_of_them_routes_it(tmp_path, locks):
    # The first server of cluster "c1" takes a block and runs the proxy; a second one of the
    # same cluster asks for that block: it shares it (no refusal, no block of its own) and
    # learns that the first routes it; a server of another cluster is still refused.
    a_dir, b_dir = data_dir(tmp_path, "a"), data_dir(tmp_path, "b")
    a = ranges.claim_loopback(a_dir, cluster="c1", proxy=True)
    try:
        assert a.proxy_elsewhere == ""
        # The first takes the range's plain lock file, the one older versions look at.
        plain = locks / ("service-cidr-" + a.cidr.replace("/", "_") + ".lock")
        assert plain.read_text().splitlines()[0] == os.path.realpath(a_dir)
        b = ranges.claim_loopback(b_dir, a.cidr, cluster="c1", proxy=True)
        try:
            assert b.cidr == a.cidr and b.kubernetes_ip == a.kubernetes_ip
            assert b.proxy_elsewhere == os.path.realpath(a_dir)
            assert ranges.shared_with_live_server(b_dir) == os.path.realpath(a_dir)
            with pytest.raises(ranges.RangeError, match=f"overlaps {a.cidr}, used by the running kubelite server"):
                ranges.claim_loopback(data_dir(tmp_path, "other"), a.cidr, cluster="c2", proxy=True)
            with pytest.raises(ranges.RangeError, match=f"overlaps {a.cidr}, used by the running kubelite server"):
                ranges.claim_loopback(data_dir(tmp_path, "plain"), a.cidr)
        finally:
            b.release()
        # A third server of the cluster that would not run a proxy is told nothing.
        c = ranges.claim_loopback(data_dir(tmp_path, "c"), a.cidr, cluster="c1", proxy=False)
        assert c.cidr == a.cidr and c.proxy_elsewhere == ""
        c.release()
    finally:
        a.release()
    # The router gone, the next server of the cluster routes the block itself.
    again = ranges.claim_loopback(b_dir, cluster="c1", proxy=True)
    try:
        assert again.cidr == a.cidr and again.proxy_elsewhere == ""
        assert ranges.shared_with_live_server(b_dir) == ""
    finally:
        again.release()


def test_a_shared_kernel_block_is_claimed_the_same_way(tmp_path, locks):
    a = ranges.claim(data_dir(tmp_path, "a"), cluster="c1", proxy=True)
    try:
        b = ranges.claim(data_dir(tmp_path, "b"), a.cidr, cluster="c1", proxy=True)
        try:
            assert b.cidr == a.cidr == "10.96.0.0/20" and b.proxy_elsewhere
            # A free-block claim of another cluster skips the shared block.
            other = ranges.claim(data_dir(tmp_path, "other"), cluster="c2")
            assert other.cidr != a.cidr
            other.release()
        finally:
            b.release()
    finally:
        a.release()
