"""Pods whose images come from a registry, end to end with the real kubectl 1.33: a loopback
docker-registry serves busybox images built here; the cluster runs offline (conftest), which
still allows loopback registries. Pull by tag and by digest, a busybox httpd image that
serves, the registry's reason on ErrImagePull → ImagePullBackOff, a private repository with
an imagePullSecret, upstream's pull-policy defaults and events, offline refusal of a remote
registry, and `kubelite image import` / `image pull` writing where the node reads."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import create_namespace
from nodeharness import apply, container_status, get_pod, pod, wait_ready
from oci_registry import start_test_images

PULLED = re.compile(r'^Successfully pulled image "(?P<image>[^"]+)" in (?P<took>[0-9.]+m?s) '
                    r'\((?P<waited>[0-9.]+m?s) including waiting\)\. Image size: (?P<size>\d+) bytes\.$')


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    """The test registries and images (oci_registry.start_test_images)."""
    images = start_test_images(tmp_path_factory.mktemp("registry"))
    yield images
    images.stop()


@pytest.fixture
def kns(request, cluster):
    """A fresh namespace on the module's cluster."""
    return create_namespace(cluster, request, "img")


def events(srv, ns: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of every Event about pod `name`, oldest first."""
    items = srv.kjson("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    items.sort(key=lambda e: (e.get("firstTimestamp") or e.get("eventTime") or "", e["metadata"]["name"]))
    return [(e["reason"], e["message"]) for e in items]


def waiting(srv, ns: str, name: str) -> dict:
    """The container's waiting state ({} when not waiting)."""
    return container_status(srv, ns, name).get("state", {}).get("waiting") or {}


def logs(srv, ns: str, name: str) -> str:
    return srv.kubectl("logs", name, "-n", ns, check=True).stdout


def kubelite(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


def test_pod_pulls_an_image_by_tag_and_runs_it(cluster, kns, imgs):
    image = f"{imgs.open.host}/test/busybox:1"
    apply(cluster, kns, pod("bb", image=image))
    cluster.wait_for(lambda: "hello from busybox" in logs(cluster, kns, "bb"), what="the image's own command ran")
    p = get_pod(cluster, kns, "bb")
    c = p["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"          # a tag other than latest
    cs = p["status"]["containerStatuses"][0]
    assert cs["image"] == image and "running" in cs["state"]
    assert cs["imageID"] == f"{imgs.open.host}/test/busybox@{imgs.digests['sh']}"
    evs = events(cluster, kns, "bb")
    assert ("Pulling", f'Pulling image "{image}"') in evs
    pulled = [PULLED.match(m) for r, m in evs if r == "Pulled"]
    assert len(pulled) == 1 and pulled[0] and pulled[0]["image"] == image and int(pulled[0]["size"]) > 1_000_000


def test_pod_pulls_by_digest(cluster, kns, imgs):
    image = f"{imgs.open.host}/test/multi@{imgs.digests['multi']}"
    apply(cluster, kns, pod("bydigest", image=image, command=["sh", "-c", "echo pinned; sleep 3600"]))
    cluster.wait_for(lambda: logs(cluster, kns, "bydigest") == "pinned\n", what="the pinned image ran")
    p = get_pod(cluster, kns, "bydigest")
    assert p["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert p["status"]["containerStatuses"][0]["imageID"] == image


def test_the_entrypoint_is_the_images_own_binary(cluster, kns, imgs):
    # `$$$$` is the kubelet's escape for the shell's `$$`: the shell prints its own executable.
    apply(cluster, kns, pod("exe", image=f"{imgs.open.host}/test/busybox:1",
                            args=["readlink /proc/$$$$/exe; sleep 3600"]))
    out = cluster.wait_for(lambda: logs(cluster, kns, "exe").strip(), what="the shell's executable")
    assert out.endswith("/bin/busybox") and out.startswith(str(cluster.data_dir)), out


def test_busybox_httpd_image_serves(cluster, kns, imgs):
    spec = pod("web", image=f"{imgs.open.host}/test/web:1", args=["-p", "$(POD_IP):8080"],
               ports=[{"containerPort": 8080}],
               env=[{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])
    apply(cluster, kns, spec)
    p = wait_ready(cluster, kns, "web")   # Ready once the agent could connect to :8080
    ip = p["status"]["podIP"]
    out = cluster.kubectl("exec", "web", "-n", kns, "--", "wget", "-qO-", f"http://{ip}:8080/", check=True).stdout
    assert out == "served by busybox httpd\n"


def test_missing_tag_is_err_image_pull_then_back_off_with_the_registrys_reason(cluster, kns, imgs):
    image = f"{imgs.open.host}/test/busybox:nope"
    apply(cluster, kns, pod("missing", image=image))
    w = cluster.wait_for(lambda: (w := waiting(cluster, kns, "missing")).get("reason") == "ImagePullBackOff" and w,
                         what="ImagePullBackOff")
    assert w["message"].startswith(f'Back-off pulling image "{image}": ErrImagePull: rpc error: code = NotFound desc = '
                                   f'failed to pull and unpack image "{image}"')
    assert "manifest unknown" in w["message"]
    evs = events(cluster, kns, "missing")
    failed = [m for r, m in evs if r == "Failed" and m.startswith(f'Failed to pull image "{image}": ')]
    assert failed and "manifest unknown" in failed[0]
    assert ("Failed", "Error: ErrImagePull") in evs and ("Failed", "Error: ImagePullBackOff") in evs
    assert ("BackOff", f'Back-off pulling image "{image}"') in evs
    row = cluster.kubectl("get", "pod", "missing", "-n", kns, "--no-headers", check=True).stdout.split()
    assert row[1] == "0/1" and row[2] in ("ErrImagePull", "ImagePullBackOff")


def test_private_repository_with_an_image_pull_secret(cluster, kns, imgs):
    reg = imgs.private
    image = f"{reg.host}/team/busybox:1"
    cluster.kubectl("create", "secret", "docker-registry", "regcred", "-n", kns, f"--docker-server={reg.host}",
                    "--docker-username=alice", "--docker-password=s3cret", check=True)
    apply(cluster, kns, pod("anon", image=image),
          pod("authed", image=image, spec={"imagePullSecrets": [{"name": "nosuch"}, {"name": "regcred"}]}))
    cluster.wait_for(lambda: "hello from busybox" in logs(cluster, kns, "authed"), what="the private image ran")
    w = cluster.wait_for(lambda: (w := waiting(cluster, kns, "anon")).get("reason") == "ImagePullBackOff" and w,
                         what="ImagePullBackOff without credentials")
    assert "unauthorized" in w["message"]
    assert ("FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (nosuch); attempting to "
            "pull the image may not succeed.") in events(cluster, kns, "authed")
    # The credentials went to skopeo in a file that is gone again.
    assert os.listdir(cluster.data_dir / "images" / "tmp") == []


def test_pull_policy_defaults_always_pulls_again_if_not_present_does_not(cluster, kns, imgs):
    latest = f"{imgs.open.host}/test/busybox"
    tagged = f"{imgs.open.host}/test/busybox:1"
    apply(cluster, kns, pod("always-1", image=latest), pod("ifnp-1", image=tagged))
    cluster.wait_for(lambda: all("running" in container_status(cluster, kns, n).get("state", {})
                                 for n in ("always-1", "ifnp-1")), what="both running")
    apply(cluster, kns, pod("always-2", image=latest), pod("ifnp-2", image=tagged))
    cluster.wait_for(lambda: all("running" in container_status(cluster, kns, n).get("state", {})
                                 for n in ("always-2", "ifnp-2")), what="both running")
    assert get_pod(cluster, kns, "always-2")["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert get_pod(cluster, kns, "ifnp-2")["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    evs = events(cluster, kns, "always-2")
    assert ("Pulling", f'Pulling image "{latest}"') in evs           # Always asks the registry every time
    assert any(r == "Pulled" and PULLED.match(m) for r, m in evs)
    evs = events(cluster, kns, "ifnp-2")
    assert ("Pulled", f'Container image "{tagged}" already present on machine') in evs
    assert not any(r == "Pulling" for r, _ in evs)
    assert get_pod(cluster, kns, "always-2")["status"]["containerStatuses"][0]["imageID"] == \
        f"{imgs.open.host}/test/busybox@{imgs.digests['latest']}"


def test_offline_node_refuses_a_remote_registry(cluster, kns):
    image = "registry.invalid/team/app:1"
    apply(cluster, kns, pod("remote", image=image))
    w = cluster.wait_for(lambda: (w := waiting(cluster, kns, "remote")).get("reason") == "ImagePullBackOff" and w,
                         what="ImagePullBackOff")
    assert f"{image}: not found: node is offline" in w["message"]
    assert "registry.invalid is not on this machine and is not contacted (not even resolved)" in w["message"]


def test_image_import_writes_where_the_node_reads(cluster, kns, tmp_path):
    app = tmp_path / "app"
    (app / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", app / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        os.symlink("busybox", app / "bin" / applet)
    name = f"imported-{os.urandom(3).hex()}:v1"
    p = kubelite("image", "import", name, str(app), "--cmd", "sh -c 'echo imported; sleep 3600'",
                 "--data-dir", str(cluster.data_dir))
    assert p.returncode == 0, p.stderr
    apply(cluster, kns, pod("imported", image=name, imagePullPolicy="Never"))
    cluster.wait_for(lambda: logs(cluster, kns, "imported") == "imported\n", what="the imported image ran")
    assert ("Pulled", f'Container image "{name}" already present on machine') in events(cluster, kns, "imported")


def test_image_pull_command_fills_the_nodes_store(cluster, kns, imgs):
    image = f"{imgs.open.host}/test/web:1"
    p = kubelite("image", "pull", image, "--data-dir", str(cluster.data_dir))
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"Image is up to date for sha256:[0-9a-f]{64}\n", p.stdout)
    apply(cluster, kns, pod("pulled", image=image, imagePullPolicy="Never",
                            command=["sh", "-c", "cat index.html; sleep 3600"]))
    cluster.wait_for(lambda: logs(cluster, kns, "pulled") == "served by busybox httpd\n", what="ran from the store")
    p = kubelite("image", "pull", "registry.invalid/team/app:1", "--data-dir", str(cluster.data_dir))
    assert p.returncode == 1 and "node is offline" in p.stderr


def test_image_pull_command_with_credentials(tmp_path, imgs):
    image = f"{imgs.private.host}/team/busybox:1"
    data = tmp_path / "data"
    p = kubelite("image", "pull", image, "--data-dir", str(data))
    assert p.returncode == 1 and "unauthorized" in p.stderr
    p = kubelite("image", "pull", image, "--creds", "alice:s3cret", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in kubelite("image", "ls", "--data-dir", str(data)).stdout.splitlines()]
    assert [f"{imgs.private.host}/team/busybox", "1"] in [r[:2] for r in rows]


def test_a_registries_yaml_mirror_serves_docker_hub_names(tmp_path, imgs):
    """Docker Hub mirrored to the loopback registry (rewritten to its test/ repositories), as an
    air-gapped node would be set up; the node is offline, so docker.io itself is never asked."""
    from conftest import start_server
    config = tmp_path / "registries.yaml"
    config.write_text(f"mirrors:\n  docker.io:\n    endpoint: [\"http://{imgs.open.host}\"]\n"
                      f"    rewrite:\n      \"^library/(.*)\": \"test/$1\"\n")
    srv = start_server(tmp_path, "--registry-config", str(config))
    try:
        apply(srv, "default", pod("hub", image="busybox:1"))
        srv.wait_for(lambda: "hello from busybox" in logs(srv, "default", "hub"), what="the mirrored image ran")
        cs = container_status(srv, "default", "hub")
        assert cs["imageID"] == f"docker.io/library/busybox@{imgs.digests['sh']}"
    finally:
        srv.stop()
