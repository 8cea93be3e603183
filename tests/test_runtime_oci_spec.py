"""The oci runtime's pure parts: the OCI spec it writes, identities, limits, runc messages."""
from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.node.runtime.oci import spec
from kubelite.node.runtime.oci.runc import runc_message, start_detail

POD = {"metadata": {"name": "web", "namespace": "prod", "uid": "u-1"}, "spec": {"containers": [{"name": "c"}]}}
NS = spec.Namespaces(network="/run/netns/kl0-x", ipc="/proc/7/ns/ipc", uts="/proc/7/ns/uts", pid=None)


def build(container: dict, pod: dict = POD, identity: spec.Identity | None = None) -> dict:
    return spec.container_spec(pod=pod, container=container, rootfs="/r", argv=["sh"], env={"A": "1"}, cwd="/",
                               identity=identity or spec.Identity(0, 0), namespaces=NS, cgroups_path="k/podu-1/c",
                               extra_mounts=[], swap_limit=True, limits=spec.HostLimits())


def test_default_container_gets_containerds_capabilities_and_masked_proc():
    s = build({"name": "c"})
    assert s["process"]["capabilities"]["bounding"] == spec.DEFAULT_CAPS
    assert "/proc/kcore" in s["linux"]["maskedPaths"] and "/proc/sys" in s["linux"]["readonlyPaths"]
    assert s["process"]["noNewPrivileges"] is False
    assert s["root"] == {"path": "/r", "readonly": False}
    kinds = {n["type"]: n.get("path") for n in s["linux"]["namespaces"]}
    assert kinds == {"mount": None, "network": "/run/netns/kl0-x", "ipc": "/proc/7/ns/ipc",
                     "uts": "/proc/7/ns/uts", "pid": None}
    assert s["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert {m["destination"] for m in s["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue"}


def test_security_context_drop_add_read_only_no_new_privileges():
    sc = {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, "readOnlyRootFilesystem": True,
          "allowPrivilegeEscalation": False}
    s = build({"name": "c", "securityContext": sc})
    assert s["process"]["capabilities"]["effective"] == ["CAP_NET_BIND_SERVICE"]
    assert s["root"]["readonly"] is True
    assert s["process"]["noNewPrivileges"] is True


def test_privileged_gets_everything_and_no_masks():
    s = build({"name": "c", "securityContext": {"privileged": True}})
    assert "CAP_SYS_ADMIN" in s["process"]["capabilities"]["bounding"]
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["readonlyPaths"] == []
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


@pytest.mark.parametrize(("resources", "memory", "cpu"), [
    ({}, None, {"shares": 2}),
    ({"limits": {"memory": "100Mi", "cpu": "500m"}}, {"limit": 104857600, "swap": 104857600},
     {"shares": 512, "quota": 50000, "period": 100000}),
    ({"requests": {"cpu": "250m"}}, None, {"shares": 256}),
    ({"requests": {"cpu": "1m"}, "limits": {"cpu": "1m"}}, None, {"shares": 2, "quota": 1000, "period": 100000}),
])
def test_resources_from_requests_and_limits(resources, memory, cpu):
    res = spec.resources({"name": "c", "resources": resources}, swap_limit=True)
    assert res.get("memory") == memory
    assert res["cpu"] == cpu


def test_host_limits_keep_oom_score_and_nofile_within_the_agents(tmp_path):
    limits = spec.HostLimits(nofile=20000, oom_floor=0)
    pod = dict(POD, status={"qosClass": "Guaranteed"})
    s = spec.container_spec(pod=pod, container={"name": "c"}, rootfs="/r", argv=["sh"], env={}, cwd="/",
                            identity=spec.Identity(0, 0), namespaces=NS, cgroups_path="x", extra_mounts=[],
                            swap_limit=False, limits=limits)
    assert s["process"]["oomScoreAdj"] == 0  # -997 would be refused without CAP_SYS_RESOURCE
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]


def image_root(tmp_path: Path) -> str:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\napp:x:1002:\nextra:x:44:app\n")
    return str(tmp_path)


def test_identity_from_image_user_names_and_security_context(tmp_path):
    root = image_root(tmp_path)
    assert spec.resolve_identity(POD, {"name": "c"}, "", root) == spec.Identity(0, 0, [])
    assert spec.resolve_identity(POD, {"name": "c"}, "app", root) == spec.Identity(1001, 1002, [44])
    assert spec.resolve_identity(POD, {"name": "c"}, "5:6", root) == spec.Identity(5, 6, [])
    pod = dict(POD, spec={"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [7],
                                              "fsGroup": 8}})
    assert spec.resolve_identity(pod, {"name": "c"}, "app", root) == spec.Identity(1000, 3000, [7, 8])
    with pytest.raises(spec.ConfigError, match="unable to find user nobody"):
        spec.resolve_identity(POD, {"name": "c"}, "nobody", root)


@pytest.mark.parametrize(("pod_sc", "container_sc", "image_user", "message"), [
    ({"runAsNonRoot": True}, {}, "", 'container has runAsNonRoot and image will run as root (pod: "web_prod(u-1)", '
                                     'container: c)'),
    ({"runAsNonRoot": True}, {}, "app", "container has runAsNonRoot and image has non-numeric user (app), cannot "
                                        'verify user is non-root (pod: "web_prod(u-1)", container: c)'),
    ({}, {"runAsNonRoot": True, "runAsUser": 0}, "1000", "container's runAsUser breaks non-root policy "
                                                         '(pod: "web_prod(u-1)", container: c)'),
    ({"runAsNonRoot": True}, {}, "1000", None),
    ({"runAsNonRoot": True, "runAsUser": 1000}, {}, "", None),
    ({}, {}, "", None),
])
def test_run_as_non_root_in_the_kubelets_words(tmp_path, pod_sc, container_sc, image_user, message):
    pod = dict(POD, spec={"securityContext": pod_sc})
    container = {"name": "c", "securityContext": container_sc}
    if message is None:
        spec.check_non_root(pod, container, image_user, str(tmp_path))
    else:
        with pytest.raises(spec.ConfigError) as err:
            spec.check_non_root(pod, container, image_user, str(tmp_path))
        assert str(err.value) == message


def test_exec_process_keeps_the_containers_user_and_environment():
    s = build({"name": "c"}, identity=spec.Identity(1000, 1000))
    proc = spec.process_for_exec(s, ["ls", "-l"], tty=True, env={"A": "2"})
    assert proc["args"] == ["ls", "-l"] and proc["terminal"] is True
    assert proc["user"]["uid"] == 1000
    assert "A=2" in proc["env"] and "A=1" not in proc["env"] and "TERM=xterm" in proc["env"]


def test_runc_messages_are_unwrapped():
    err = ('time="2026-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: '
           'exec: \\"nope\\": executable file not found in $PATH"\n')
    msg = runc_message(err)
    assert msg == 'runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH'
    assert start_detail(msg) == 'exec: "nope": executable file not found in $PATH'
