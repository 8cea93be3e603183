"""Pulls from a real registry on a loopback port (Debian's docker-registry), in process: by tag
and by digest, image indexes resolved to this platform, layers shared between images, the
registry's reasons on failure, htpasswd auth with pull secrets, registries.yaml mirrors, and
offline mode, which refuses any registry off this machine without a single name lookup."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import stat

import pytest
from oci_registry import start_test_images

from kubelite.images import pull as pull_mod
from kubelite.images import skopeo
from kubelite.images.credentials import Credential, Keyring, keyring_from_secrets
from kubelite.images.offline import is_loopback_host, offline_from_env
from kubelite.images.pull import Puller, PullError, go_duration, rpc_message
from kubelite.images.reference import parse
from kubelite.images.registries import Endpoint, RegistryConfig, plan
from kubelite.images.store import ImageStore
from kubelite.images.unpack import relativize_symlinks


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The test registries and images (oci_registry.start_test_images)."""
    imgs = start_test_images(tmp_path_factory.mktemp("registry"))
    yield {"open": imgs.open, "private": imgs.private, "builder": imgs.builder, "digests": imgs.digests}
    imgs.stop()


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "images"), builtins=False)


def secret(registry: str, user: str, password: str, name: str = "pull") -> dict:
    """A kubernetes.io/dockerconfigjson Secret for `registry`."""
    cfg = {"auths": {registry: {"username": user, "password": password,
                                "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}
    return {"metadata": {"name": name, "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(cfg).encode()).decode()}}


# -- pulls against the registry -------------------------------------------------------------

async def test_pull_by_tag_stores_verified_blobs_and_unpacks_the_image(images, store):
    reg = images["open"]
    image = await Puller(store, offline=True).pull(f"{reg.host}/test/busybox:1")
    assert image.ref == f"{reg.host}/test/busybox:1"
    assert image.registry_digest == images["digests"]["sh"]
    assert image.repo_digest == f"{reg.host}/test/busybox@{images['digests']['sh']}"
    assert image.entrypoint == ["/bin/sh", "-c"] and image.cmd == ["echo hello from busybox; sleep 3600"]
    assert os.path.isfile(os.path.join(image.rootfs, "bin", "busybox"))
    # The absolute /bin/httpd -> /bin/busybox link now stays inside the image.
    assert os.readlink(os.path.join(image.rootfs, "bin", "httpd")) == "../bin/busybox"
    assert os.path.realpath(os.path.join(image.rootfs, "bin", "httpd")) == os.path.join(image.rootfs, "bin", "busybox")
    manifest = json.loads(store.get_blob(image.digest))
    for blob in [manifest["config"], *manifest["layers"]]:
        assert "sha256:" + hashlib.sha256(store.get_blob(blob["digest"])).hexdigest() == blob["digest"]
    # No session directory (auth file, policy, scratch layout) is left behind.
    assert os.listdir(os.path.join(store.root, "tmp")) == []
    assert store.resolve(f"{reg.host}/test/busybox:1").digest == image.digest


async def test_pull_by_digest_and_find_it_again_by_digest(images, store):
    reg = images["open"]
    digest = images["digests"]["sh"]
    image = await Puller(store, offline=True).pull(f"{reg.host}/test/busybox@{digest}")
    assert image.ref == f"{reg.host}/test/busybox@{digest}"
    assert store.resolve(f"{reg.host}/test/busybox@{digest}") is not None
    with pytest.raises(PullError) as err:
        await Puller(store, offline=True).pull(f"{reg.host}/test/busybox@sha256:{'0' * 64}")
    assert "manifest unknown" in str(err.value) and err.value.code == "NotFound"


async def test_an_image_index_resolves_to_this_platform(images, store):
    reg = images["open"]
    image = await Puller(store, offline=True).pull(f"{reg.host}/test/multi:1")
    # The index's digest is what the registry (and pod status imageID) call the image …
    assert image.registry_digest == images["digests"]["multi"]
    # … but what was stored and unpacked is this machine's manifest, not the decoy listed first.
    assert image.digest == images["digests"]["sh"]
    assert os.path.isfile(os.path.join(image.rootfs, "bin", "busybox"))
    assert not os.path.exists(os.path.join(image.rootfs, "decoy"))
    assert store.resolve(f"{reg.host}/test/multi@{images['digests']['multi']}") is not None


async def test_images_share_layers_a_shared_layer_is_fetched_once(images, store):
    reg = images["open"]
    layer = images["builder"].manifest("sh")["layers"][0]["digest"]
    assert images["builder"].manifest("web")["layers"][0]["digest"] == layer
    before = reg.blob_gets("test/web", layer)
    puller = Puller(store, offline=True)
    await puller.pull(f"{reg.host}/test/busybox:1")
    web = await puller.pull(f"{reg.host}/test/web:1")
    assert reg.blob_gets("test/web", layer) == before   # already in the store: not downloaded again
    assert os.path.isfile(os.path.join(web.rootfs, "www", "index.html"))
    assert len([m for m in json.loads(store.get_blob(web.digest))["layers"]]) == 2


async def test_missing_tag_carries_the_registrys_reason(images, store):
    reg = images["open"]
    with pytest.raises(PullError) as err:
        await Puller(store, offline=True).pull(f"{reg.host}/test/busybox:nope")
    ref = f"{reg.host}/test/busybox:nope"
    assert str(err.value).startswith(f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": ')
    assert "manifest unknown" in str(err.value)
    assert rpc_message(err.value).startswith("rpc error: code = NotFound desc = failed to pull and unpack image")


async def test_a_layer_that_cannot_be_extracted_fails_the_pull(images, store):
    reg = images["open"]
    with pytest.raises(PullError) as err:
        await Puller(store, offline=True).pull(f"{reg.host}/test/broken:1")
    assert str(err.value).startswith(f'failed to pull and unpack image "{reg.host}/test/broken:1": failed to extract')
    assert err.value.code == "Unknown"


async def test_connection_refused_is_the_reason(store):
    from conftest import free_port
    port = free_port()   # nothing listens there
    with pytest.raises(PullError) as err:
        await Puller(store, offline=True).pull(f"127.0.0.1:{port}/x/y:1")
    assert "connection refused" in str(err.value) and err.value.code == "Unknown"


async def test_private_registry_needs_a_pull_secret(images, store):
    reg = images["private"]
    ref = f"{reg.host}/team/busybox:1"
    puller = Puller(store, offline=True, node_credentials=False)
    with pytest.raises(PullError) as err:
        await puller.pull(ref)
    assert "unauthorized" in str(err.value)
    with pytest.raises(PullError) as err:
        await puller.pull(ref, [secret(reg.host, "alice", "wrong")])
    assert "unauthorized" in str(err.value)
    # A stale secret next to a good one: both are tried, the pull succeeds.
    image = await puller.pull(ref, [secret(reg.host, "alice", "wrong", "old"), secret(reg.host, "alice", "s3cret")])
    assert image.registry_digest == images["digests"]["private"]
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_the_auth_file_is_private_and_removed(tmp_path):
    ep = Endpoint("127.0.0.1:5000", "x", True, False)
    session = skopeo.Session.create(str(tmp_path), ep, Credential("u", "p"))
    path = os.path.join(session.dir, "auth.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(session.dir).st_mode) == 0o700
    with open(path) as f:
        auth = json.load(f)["auths"]["127.0.0.1:5000"]["auth"]
    assert base64.b64decode(auth) == b"u:p"
    session.close()
    assert not os.path.exists(session.dir)


async def test_registries_yaml_mirror_with_rewrite_serves_docker_hub_names_offline(images, store, monkeypatch):
    reg = images["open"]
    config = RegistryConfig.parse({"mirrors": {"docker.io": {"endpoint": [f"http://{reg.host}"],
                                                             "rewrite": {"^library/(.*)": "test/$1"}}}})
    calls = _record_subprocesses(monkeypatch)
    image = await Puller(store, offline=True, config=config).pull("busybox:1")
    assert image.ref == "docker.io/library/busybox:1"          # stored under the name the pod used
    assert image.registry_digest == images["digests"]["sh"]
    # Only the loopback mirror was asked; docker.io was neither contacted nor resolved.
    refs = [a for argv in calls for a in argv if a.startswith("docker://")]
    assert refs and all(r.startswith(f"docker://{reg.host}/test/busybox") for r in refs)


# -- offline mode ------------------------------------------------------------------------------

async def test_offline_refuses_a_remote_registry_without_any_lookup(store, monkeypatch):
    calls = _record_subprocesses(monkeypatch)
    lookups: list[tuple] = []

    def no_lookup(*args, **kwargs):
        lookups.append(args)
        raise AssertionError(f"name lookup while offline: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket, "gethostbyname", no_lookup)
    monkeypatch.setattr(socket, "gethostbyname_ex", no_lookup)
    monkeypatch.setattr(socket, "create_connection", no_lookup)
    with pytest.raises(PullError) as err:
        await Puller(store, offline=True).pull("registry.invalid/team/app:1")
    msg = str(err.value)
    assert msg.startswith('failed to pull and unpack image "registry.invalid/team/app:1"')
    assert "registry.invalid/team/app:1: not found: node is offline" in msg
    assert err.value.code == "NotFound"
    assert calls == [] and lookups == []   # skopeo never started, no resolver called


async def test_offline_uses_what_the_store_has(store, tmp_path, monkeypatch):
    calls = _record_subprocesses(monkeypatch)
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text("#!/bin/sh\n")
    store.import_dir("registry.invalid/team/app:latest", str(src), cmd=["tool"])
    image = await Puller(store, offline=True).pull("registry.invalid/team/app")   # :latest means Always
    assert image.ref == "registry.invalid/team/app:latest" and calls == []


def test_offline_comes_from_the_environment():
    assert offline_from_env({"KUBELITE_OFFLINE": "1"}) and offline_from_env({"KUBELITE_OFFLINE": "true"})
    assert not offline_from_env({}) and not offline_from_env({"KUBELITE_OFFLINE": "0"})
    # The tests themselves run offline (conftest), so nothing here can reach a remote registry.
    assert offline_from_env()


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1:5000", True), ("127.3.2.1", True), ("localhost:5000", True), ("LOCALHOST", True),
    ("[::1]:5000", True), ("::1", True), ("10.0.0.1:5000", False), ("192.168.1.2", False),
    ("127.0.0.1.nip.io", False), ("registry.invalid", False), ("docker.io", False), ("localhost.example", False),
])
def test_loopback_is_judged_from_the_text_alone(host, loopback):
    assert is_loopback_host(host) is loopback


# -- planning, credentials, formatting ---------------------------------------------------------

def test_plan_mirrors_rewrites_and_plain_http():
    config = RegistryConfig.parse({
        "mirrors": {"docker.io": {"endpoint": ["https://mirror.example:5000/v2", "http://10.1.2.3:5000"],
                                  "rewrite": {"^rancher/(.*)": "mirrored/rancher/$1"}},
                    "*": {"endpoint": ["https://catchall.example"]}},
        "configs": {"mirror.example:5000": {"auth": {"username": "u", "password": "p"}},
                    "quay.io": {"tls": {"insecure_skip_verify": True}}}})
    eps = plan(parse("rancher/coredns:1.6"), config)
    assert [(e.host, e.path, e.plain_http, e.mirror) for e in eps] == [
        ("mirror.example:5000", "mirrored/rancher/coredns", False, True),
        ("10.1.2.3:5000", "mirrored/rancher/coredns", True, True),          # written http://
        ("docker.io", "rancher/coredns", False, False)]                     # no rewrite on the default
    assert eps[0].credential == Credential("u", "p", "", eps[0].credential.source)
    eps = plan(parse("quay.io/org/app@sha256:" + "a" * 64), config)
    assert [(e.host, e.plain_http) for e in eps] == [("catchall.example", False), ("quay.io", True)]
    assert eps[1].docker_ref(parse("quay.io/org/app@sha256:" + "a" * 64)) == "docker://quay.io/org/app@sha256:" + "a" * 64
    assert plan(parse("127.0.0.1:5000/x:1"))[0].plain_http   # loopback: plain HTTP allowed
    assert not plan(parse("registry.example/x:1"))[0].plain_http


def test_pull_secrets_match_like_the_kubelet():
    ring = keyring_from_secrets([
        secret("https://index.docker.io/v1/", "hub", "1"),
        secret("*.example.com", "glob", "2"),
        secret("registry.example.com:5000/team", "team", "3"),
        secret("registry.example.com:5000", "host", "4"),
    ])
    assert [c.username for c in ring.lookup(parse("nginx"))] == ["hub"]
    assert [c.username for c in ring.lookup(parse("registry.example.com:5000/team/app:1"))] == ["team", "host"]
    assert [c.username for c in ring.lookup(parse("registry.example.com:5000/other/app:1"))] == ["host"]
    assert [c.username for c in ring.lookup(parse("quay.example.com/app"))] == ["glob"]
    assert ring.lookup(parse("a.b.example.com/app")) == []          # a glob matches one label
    assert ring.lookup(parse("registry.example.com:6000/team/app")) == []  # another port: no match
    assert len(Keyring()) == 0


def test_go_duration_matches_the_kubelets_event_text():
    assert [go_duration(s) for s in (0.0004, 0.313, 1.594, 2.0, 15.981, 75.5, 3725.0)] == \
        ["0s", "313ms", "1.594s", "2s", "15.981s", "1m15.5s", "1h2m5s"]


def test_absolute_symlinks_become_relative_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "busybox").write_text("x")
    os.symlink("/bin/busybox", root / "bin" / "sh")
    os.symlink("/bin/busybox", root / "usr" / "bin" / "env")
    os.symlink("/../../etc/passwd", root / "escape")
    os.symlink("busybox", root / "bin" / "cat")
    assert relativize_symlinks(str(root)) == 3
    assert os.readlink(root / "bin" / "sh") == "../bin/busybox"
    assert os.readlink(root / "usr" / "bin" / "env") == "../../bin/busybox"
    assert os.readlink(root / "escape") == "etc/passwd"              # ".." stops at the root
    assert os.readlink(root / "bin" / "cat") == "busybox"
    assert os.path.realpath(root / "usr" / "bin" / "env") == str(root / "bin" / "busybox")


def test_skopeo_errors_are_reduced_to_the_reason():
    line = ('time="2026-01-01T00:00:00Z" level=fatal msg="initializing source docker://127.0.0.1:5000/a:1: '
            'reading manifest 1 in 127.0.0.1:5000/a: manifest unknown: manifest unknown"')
    err = skopeo.RegistryError(skopeo.error_reason(line))
    assert err.reason == "reading manifest 1 in 127.0.0.1:5000/a: manifest unknown: manifest unknown"
    assert err.not_found and not err.unauthorized
    line = ('time="x" level=fatal msg="Error parsing image name \\"docker://h/a:1\\": pinging container registry h: '
            'Get \\"https://h/v2/\\": dial tcp 127.0.0.1:1: connect: connection refused"')
    assert skopeo.error_reason(line) == 'pinging container registry h: Get "https://h/v2/": dial tcp 127.0.0.1:1: ' \
                                        'connect: connection refused'


def _record_subprocesses(monkeypatch) -> list[list[str]]:
    """Record every subprocess the pull code starts (and still start it)."""
    calls: list[list[str]] = []
    real = asyncio.create_subprocess_exec

    async def recording(program, *args, **kwargs):
        calls.append([str(program), *map(str, args)])
        return await real(program, *args, **kwargs)

    monkeypatch.setattr(skopeo.asyncio, "create_subprocess_exec", recording)
    assert pull_mod.skopeo is skopeo
    return calls


async def test_offline_a_loopback_registry_cannot_send_skopeo_elsewhere(store):
    """A loopback registry whose token server is off the machine: skopeo is sent to a dead loopback proxy
    for it (Go does not resolve a proxied host), so the name is never looked up and nothing leaves."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="https://auth.invalid/token",service="registry"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(PullError) as err:
            await Puller(store, offline=True).pull(f"127.0.0.1:{server.server_address[1]}/team/app:1")
    finally:
        server.shutdown()
        server.server_close()
    msg = str(err.value)
    # The token request went to the dead proxy on 127.0.0.1:9 instead of being resolved and dialled.
    assert 'Get "https://auth.invalid/token?' in msg and "proxyconnect tcp: dial tcp 127.0.0.1:9" in msg, msg
    assert "lookup auth.invalid" not in msg


def test_the_agents_runtime_reads_the_shared_store_and_honours_offline(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from kubelite.node.agent import AgentOptions, make_runtime
    from kubelite.node.runtime.process import ProcessRuntime
    slot = SimpleNamespace(pod_cidr="10.244.250.0/24", host_cidr="127.91.0.0/16", bridge="kltest", prefix="kltest")

    def runtime(**opts) -> ProcessRuntime:
        rt = make_runtime(AgentOptions("n", str(tmp_path), network="host", **opts), slot)
        assert isinstance(rt, ProcessRuntime)
        return rt

    # The store `kubelite image import/pull --data-dir` writes: DATA_DIR/images.
    assert runtime().images.root == str(tmp_path / "images")
    monkeypatch.delenv("KUBELITE_OFFLINE")
    assert runtime().puller.offline is False
    assert runtime(offline=True).puller.offline is True            # --offline
    monkeypatch.setenv("KUBELITE_OFFLINE", "1")
    assert runtime().puller.offline is True                        # the environment alone
    (tmp_path / "registries.yaml").write_text('mirrors:\n  docker.io:\n    endpoint: ["http://127.0.0.1:5000"]\n')
    assert runtime().puller.config.mirrors["docker.io"].endpoints == ["http://127.0.0.1:5000"]
