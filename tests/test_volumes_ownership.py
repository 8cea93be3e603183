"""fsGroup ownership of a volume and fsGroupChangePolicy, at unit level (as root, so the
group really changes); the end-to-end view from inside a container is in test_volumes_oci.py."""
from __future__ import annotations

import os
import stat

import pytest

from kubelite.node.volumes import emptydir, ownership

GID = 2345


@pytest.fixture(autouse=True)
def _root():
    assert os.geteuid() == 0, "changing a file's group to any gid needs root"


def _tree(root) -> None:
    (root / "sub").mkdir(mode=0o700)
    (root / "sub" / "f").write_text("x")
    os.chmod(root / "sub" / "f", 0o600)
    (root / "top").write_text("y")
    os.chmod(root / "top", 0o644)


def _gid_mode(path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_gid, stat.S_IMODE(st.st_mode)


def test_always_gives_every_entry_the_group_with_group_rw_and_setgid_directories(tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir(mode=0o755)
    _tree(vol)
    outside = tmp_path / "outside"
    outside.write_text("z")
    os.symlink(outside, vol / "link")
    assert ownership.apply(str(vol), GID) == 5
    assert _gid_mode(vol) == (GID, 0o2775)
    assert _gid_mode(vol / "sub") == (GID, 0o2770)
    assert _gid_mode(vol / "sub" / "f") == (GID, 0o660)
    assert _gid_mode(vol / "top") == (GID, 0o664)
    assert os.lstat(vol / "link").st_gid == GID
    assert os.stat(outside).st_gid == 0  # a link is not followed
    assert not ownership.needs_change(str(vol), GID)


def test_on_root_mismatch_skips_the_walk_when_the_root_is_right(tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    _tree(vol)
    os.chown(vol, -1, GID)
    os.chmod(vol, 0o2770)
    assert not ownership.needs_change(str(vol), GID)
    assert ownership.apply(str(vol), GID, ownership.ON_ROOT_MISMATCH) == 0
    assert _gid_mode(vol / "top") == (0, 0o644)  # untouched
    # Always walks anyway.
    assert ownership.apply(str(vol), GID, ownership.ALWAYS) == 4
    assert _gid_mode(vol / "top") == (GID, 0o664)
    # A root without the set-group-ID bit (or another group) is a mismatch: the walk runs.
    os.chmod(vol, 0o770)
    os.chown(vol / "top", -1, 0)
    assert ownership.needs_change(str(vol), GID)
    assert ownership.apply(str(vol), GID, ownership.ON_ROOT_MISMATCH) == 4
    assert _gid_mode(vol) == (GID, 0o2770) and os.lstat(vol / "top").st_gid == GID


def test_read_only_asks_for_group_read_only(tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir(mode=0o700)
    (vol / "f").write_text("x")
    os.chmod(vol / "f", 0o600)
    ownership.apply(str(vol), GID, readonly=True)
    assert _gid_mode(vol / "f") == (GID, 0o640)
    assert _gid_mode(vol) == (GID, 0o2750)


def test_without_fs_group_nothing_changes(tmp_path):
    (tmp_path / "f").write_text("x")
    assert ownership.apply(str(tmp_path), None) == 0
    assert os.lstat(tmp_path / "f").st_gid == 0


def test_an_emptydir_set_up_again_gives_what_is_in_it_to_the_fs_group(tmp_path):
    vol = tmp_path / "e"
    emptydir.setup(str(vol), {}, fs_group=GID)
    assert _gid_mode(vol) == (GID, 0o2777)
    (vol / "made-by-root").write_text("x")   # e.g. by a container of another group
    os.chown(vol / "made-by-root", -1, 0)
    emptydir.setup(str(vol), {}, fs_group=GID, change_policy=ownership.ON_ROOT_MISMATCH)
    assert os.lstat(vol / "made-by-root").st_gid == 0     # root is right: skipped
    emptydir.setup(str(vol), {}, fs_group=GID)
    assert os.lstat(vol / "made-by-root").st_gid == GID   # Always (the default)
