"""The oci runtime's cgroup v2 path. This machine is cgroup v1 (the hybrid layout), so the
v2 path is checked against a fake cgroupfs root and the spec runc is given, and against a
real cgroup2 hierarchy mounted in a temp dir (no controllers can be delegated there: it
only shows the tree is made and removed where v2 puts it)."""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from kubelite.node.runtime.oci import cgroups, spec


def _fake_root(tmp_path, kind: str) -> str:
    root = tmp_path / kind
    root.mkdir()
    if kind == "v2":
        (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
        (root / "cgroup.subtree_control").write_text("")
    elif kind == "hybrid":
        for d in ("memory", "cpu", "pids", "unified"):
            (root / d).mkdir()
        (root / "unified" / "cgroup.controllers").write_text("")
    else:
        for d in ("memory", "cpu", "pids"):
            (root / d).mkdir()
    return str(root)


def test_the_layout_is_told_apart(tmp_path):
    for kind in ("v1", "hybrid", "v2"):
        assert cgroups.mode(_fake_root(tmp_path, kind)) == kind


def test_cpu_weight_is_the_kubelets_conversion_of_shares():
    assert cgroups.cpu_weight(2) == 1
    assert cgroups.cpu_weight(262_144) == 10_000
    assert cgroups.cpu_weight(1024) == 39       # 1 CPU
    assert cgroups.cpu_weight(102) == 4         # 100m
    assert cgroups.cpu_weight(0) == 1 and cgroups.cpu_weight(10**9) == 10_000


def _spec(container: dict, v2: bool) -> dict:
    pod = {"metadata": {"name": "p", "namespace": "n", "uid": "u"}, "spec": {"containers": [container]}}
    ns = spec.Namespaces(network=None, ipc=None, uts=None, pid=None)
    return spec.container_spec(pod=pod, container=container, rootfs="/r", argv=["sh"], env={}, cwd="/",
                               identity=spec.Identity(0, 0), namespaces=ns, cgroups_path="/kubelite-x/podu/c",
                               extra_mounts=[], swap_limit=True, limits=spec.HostLimits(), cgroup_v2=v2)


def test_on_v2_the_spec_carries_the_v2_files_runc_writes():
    c = {"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "50Mi"},
                                    "limits": {"cpu": "500m", "memory": "100Mi"}}}
    res = _spec(c, v2=True)["linux"]["resources"]
    assert res["unified"] == {"memory.max": str(100 * 1024 * 1024), "memory.swap.max": "0",
                              "cpu.weight": str(cgroups.cpu_weight(256)), "cpu.max": "50000 100000"}
    # The v1-style fields stay (runc reads them too; unified wins where both say something).
    assert res["memory"] == {"limit": 100 * 1024 * 1024, "swap": 100 * 1024 * 1024}
    assert res["cpu"] == {"shares": 256, "quota": 50000, "period": 100000}
    # BestEffort: the smallest weight, no CPU or memory cap.
    assert _spec({"name": "c"}, v2=True)["linux"]["resources"]["unified"] == {"cpu.weight": "1",
                                                                              "cpu.max": "max 100000"}


def test_on_v1_the_spec_has_no_unified_section():
    # runc refuses `unified` on a v1 host.
    c = {"name": "c", "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}
    assert "unified" not in _spec(c, v2=False)["linux"]["resources"]


def test_v2_pod_cgroups_sit_at_the_root_with_controllers_delegated_and_the_pids_limit(tmp_path):
    root = _fake_root(tmp_path, "v2")
    cg = cgroups.PodCgroups("kubelite-abc", root=root)
    assert cg.v2 and cg.mode == "v2" and cg.tree == []
    assert cg.container_path("u1", "c1") == "/kubelite-abc/podu1/c1"
    assert cg.pod_dirs("u1") == [os.path.join(root, "kubelite-abc", "podu1")]
    assert cg.memory_dir("u1", "c1") == os.path.join(root, "kubelite-abc", "podu1", "c1")
    assert cg.swap_limit() is True
    dirs = cg.create_pod("u1", 321)
    assert dirs == cg.pod_dirs("u1") and os.path.isdir(dirs[0])
    with open(os.path.join(dirs[0], "pids.max")) as f:
        assert f.read() == "321"
    # Every level above the pod delegates memory, cpu and pids to its children.
    for level in (root, os.path.join(root, "kubelite-abc")):
        with open(os.path.join(level, "cgroup.subtree_control")) as f:
            assert f.read() == "+memory +cpu +pids"


def test_v2_oom_kills_are_read_from_memory_events(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\n")
    assert cgroups.oom_killed(str(d)) is False
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert cgroups.oom_killed(str(d)) is True


@pytest.fixture
def cgroup2_mount(tmp_path):
    """A real cgroup2 hierarchy mounted at a temp dir (root needed); unmounted after."""
    assert os.geteuid() == 0, "mounting cgroup2 needs root"
    mnt = tmp_path / "cg2"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "cgroup2", "none", str(mnt)], check=True, capture_output=True)
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)


def test_on_a_real_cgroup2_hierarchy_the_pod_tree_is_made_and_removed(cgroup2_mount):
    name = f"kubelite-test-{uuid.uuid4().hex[:8]}"
    cg = cgroups.PodCgroups(name, root=cgroup2_mount)
    assert cg.mode == "v2"
    try:
        (pod_dir,) = cg.create_pod("u1", None)
        # The kernel made it a cgroup: it has its own cgroup.procs, empty.
        assert os.path.exists(os.path.join(pod_dir, "cgroup.procs"))
        assert cgroups.pids([pod_dir]) == set()
        os.mkdir(os.path.join(pod_dir, "c1"))       # a container level, as runc would make it
        assert cgroups.kill_all([pod_dir]) == 0
        cgroups.remove([pod_dir])
        assert not os.path.exists(pod_dir)
        cgroups.remove_parent([pod_dir])
        assert not os.path.exists(os.path.join(cgroup2_mount, name))
    finally:
        for d in (os.path.join(cgroup2_mount, name, "podu1", "c1"), os.path.join(cgroup2_mount, name, "podu1"),
                  os.path.join(cgroup2_mount, name)):
            if os.path.isdir(d):
                os.rmdir(d)
