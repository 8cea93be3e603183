"""Image references, the OCI store, and the built-in tutorial images."""
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import time

import pytest

from kubelite.images import builtin, reference
from kubelite.images.bootcamp_app import app_files as builtin_app_files
from kubelite.images.store import ImageNotFound, ImageStore


@pytest.mark.parametrize("given,expected", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25"),
    ("library/nginx", "docker.io/library/nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/library/nginx", "docker.io/library/nginx:latest"),
    ("jocatalin/kubernetes-bootcamp:v2", "docker.io/jocatalin/kubernetes-bootcamp:v2"),
    ("gcr.io/google-samples/kubernetes-bootcamp:v1", "gcr.io/google-samples/kubernetes-bootcamp:v1"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/team/app:dev", "localhost:5000/team/app:dev"),
    ("nginx@sha256:" + "a" * 64, "docker.io/library/nginx@sha256:" + "a" * 64),
    ("nginx:1.25@sha256:" + "b" * 64, "docker.io/library/nginx:1.25@sha256:" + "b" * 64),
])
def test_normalize_like_containerd(given, expected):
    assert reference.normalize(given) == expected


@pytest.mark.parametrize("bad", ["", "UPPER", "nginx:", "nginx:bad tag", "a//b", "nginx@sha256:abc", " nginx"])
def test_invalid_references_are_rejected(bad):
    with pytest.raises(reference.InvalidReference):
        reference.parse(bad)


def test_familiar_form_drops_default_domain():
    assert reference.parse("nginx").familiar() == "nginx:latest"
    assert reference.parse("jocatalin/kubernetes-bootcamp:v2").familiar() == "jocatalin/kubernetes-bootcamp:v2"
    assert reference.parse("gcr.io/x/y:v1").familiar() == "gcr.io/x/y:v1"


def test_store_is_an_oci_image_layout(tmp_path):
    store = ImageStore(str(tmp_path))
    image = store.pull("jocatalin/kubernetes-bootcamp:v1")
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "index.json").read_text())
    descs = [d for d in index["manifests"] if d["digest"] == image.digest]
    assert descs[0]["annotations"]["io.containerd.image.name"] == "docker.io/jocatalin/kubernetes-bootcamp:v1"
    assert descs[0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    manifest = json.loads((tmp_path / "blobs/sha256" / image.digest.split(":")[1]).read_bytes())
    config = json.loads((tmp_path / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    assert config["config"]["Cmd"] == ["sh", "start.sh"]
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    # The userland layer is a plain tar, the app layer gzipped; diff_ids name the tars.
    assert [d["mediaType"] for d in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar",
                                                           "application/vnd.oci.image.layer.v1.tar+gzip"]
    layer = (tmp_path / "blobs/sha256" / manifest["layers"][1]["digest"].split(":")[1]).read_bytes()
    assert config["rootfs"]["diff_ids"][1] == "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        assert {"app/server.js", "app/start.sh", "app/www/cgi-bin/index.cgi"} <= set(tar.getnames())
    assert os.path.isfile(os.path.join(image.rootfs, "app", "server.js"))
    assert image.repo_digest == "docker.io/jocatalin/kubernetes-bootcamp@" + image.digest


def test_builtin_images_exist_in_every_spelling_and_version(tmp_path):
    store = ImageStore(str(tmp_path))
    v1 = store.resolve("gcr.io/google-samples/kubernetes-bootcamp:v1")
    v2 = store.resolve("docker.io/jocatalin/kubernetes-bootcamp:v2")
    assert v1 is not None and v2 is not None and v1.digest != v2.digest
    assert b"v=2" in builtin_app_files("2")["app/www/cgi-bin/index.cgi"][0]
    refs = {i.ref for i in store.list_images()}
    assert set(builtin.BUILTIN_IMAGES) <= refs
    # Deterministic builds: a second store computes the same digest.
    assert ImageStore(str(tmp_path / "other")).resolve("jocatalin/kubernetes-bootcamp:v2").digest == v2.digest


def test_missing_image_fails_like_containerd(tmp_path):
    store = ImageStore(str(tmp_path))
    assert store.resolve("jocatalin/kubernetes-bootcamp:v10") is None
    with pytest.raises(ImageNotFound) as err:
        store.pull("jocatalin/kubernetes-bootcamp:v10")
    ref = "docker.io/jocatalin/kubernetes-bootcamp:v10"
    assert str(err.value) == (f'failed to pull and unpack image "{ref}": failed to resolve reference '
                              f'"{ref}": {ref}: not found')
    with pytest.raises(ImageNotFound) as err:
        store.pull("gcr.io/google-samples/kubernetes-bootcamp:v10")
    # The text the recorded cluster showed after "rpc error: code = NotFound desc = ".
    assert str(err.value) == (
        'failed to pull and unpack image "gcr.io/google-samples/kubernetes-bootcamp:v10": failed to resolve '
        'reference "gcr.io/google-samples/kubernetes-bootcamp:v10": gcr.io/google-samples/kubernetes-bootcamp:v10:'
        ' not found')


def test_import_dir_and_remove(tmp_path):
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (src / "bin" / "hello").chmod(0o755)
    store = ImageStore(str(tmp_path / "store"), builtins=False)
    image = store.import_dir("myapp:dev", str(src), cmd=["hello"], env={"PATH": "/bin:/usr/bin"},
                             workdir="/work", ports=[9000])
    assert image.ref == "docker.io/library/myapp:dev"
    assert (image.cmd, image.working_dir, image.exposed_ports) == (["hello"], "/work", ["9000/tcp"])
    assert image.env_dict()["PATH"] == "/bin:/usr/bin"
    assert store.resolve("docker.io/library/myapp:dev").digest == image.digest
    assert store.resolve("myapp@" + image.digest).digest == image.digest
    root = store.unpack(image)
    assert os.access(os.path.join(root, "bin", "hello"), os.X_OK)
    assert [i.ref for i in store.list_images()] == ["docker.io/library/myapp:dev"]
    assert store.remove("myapp:dev") and store.resolve("myapp:dev") is None


def test_layer_whiteouts_delete_lower_files(tmp_path):
    from kubelite.images.layers import build_layer
    store = ImageStore(str(tmp_path), builtins=False)
    lower = build_layer({"etc/a": (b"a", 0o644), "etc/b": (b"b", 0o644)})
    upper = build_layer({"etc/.wh.a": (b"", 0o644), "etc/c": (b"c", 0o644)})
    image = store.add_image("layered:1", [lower, upper], {"Cmd": ["true"]})
    assert sorted(os.listdir(os.path.join(store.unpack(image), "etc"))) == ["b", "c"]


def test_builtin_image_carries_its_own_userland(tmp_path):
    """busybox, bash and curl with every library they load, so nothing of the host is needed."""
    store = ImageStore(str(tmp_path))
    root = store.unpack(store.pull("gcr.io/google-samples/kubernetes-bootcamp:v1"))
    for path in ("bin/busybox", "bin/bash", "usr/bin/curl", "app/start.sh", "app/www/cgi-bin/index.cgi"):
        assert os.access(os.path.join(root, path), os.X_OK), path
    for applet in ("sh", "tar", "httpd", "ls", "cat"):
        assert os.readlink(os.path.join(root, "bin", applet)) == "busybox"
    needed = {lib for b in ("bash", "curl") for lib in builtin.shared_libraries(shutil.which(b))}
    assert any("libc.so" in lib for lib in needed) and any("ld-linux" in lib for lib in needed)
    for lib in needed:
        assert os.path.isfile(os.path.join(root, lib.lstrip("/"))), lib
    with open(os.path.join(root, "etc", "passwd")) as f:
        assert "root:x:0:0:" in f.read()


def test_builtin_app_serves_the_bootcamp_reply_from_the_image_alone(tmp_path):
    """start.sh run by the image's own busybox (no chroot, an empty PATH): the reply, the
    request count and uptime in the log, and SIGTERM ends it."""
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    store = ImageStore(str(tmp_path / "store"))
    image = store.pull("jocatalin/kubernetes-bootcamp:v2")
    root = tmp_path / "c"
    shutil.copytree(image.rootfs, root, symlinks=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = (root / "app" / "start.sh").read_text().replace("8080", str(port))
    (root / "app" / "start.sh").write_text(start)
    with open(tmp_path / "log", "wb") as log:
        # In a session of its own, as every runtime starts a container.
        proc = subprocess.Popen([str(root / "bin" / "sh"), "start.sh"], cwd=root / "app", stdout=log, stderr=log,
                                env={"HOSTNAME": "pod-x", "POD_IP": "127.0.0.1", "PATH": "/nonexistent"},
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.05)
        assert body == "Hello Kubernetes bootcamp! | Running on: pod-x | v=2\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/any/dir/", timeout=5) as r:
            assert r.read().decode() == body
        want = r"^Running On: pod-x \| Total Requests: 2 \| App Uptime: [0-9.]+ seconds \| Log Time: \S+Z$"
        import re
        while time.monotonic() < deadline and not re.search(want, (tmp_path / "log").read_text(), re.M):
            time.sleep(0.05)
        text = (tmp_path / "log").read_text()
        assert re.match(r"Kubernetes Bootcamp App Started At: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \| "
                        r"Running On:  pod-x \n\n", text), text
        assert re.search(want, text, re.M), text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM   # it dies of the signal, as the Node.js app
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _du(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files
               if not os.path.islink(os.path.join(d, f)))


def test_image_gc_removes_unused_images_least_recently_used_first_past_the_high_threshold(tmp_path):
    from kubelite.images.layers import build_layer
    from kubelite.images.store import GCPolicy
    store = ImageStore(str(tmp_path), builtins=False)
    shared = build_layer({"etc/shared": (b"s", 0o644)})
    images = {}
    for i, name in enumerate(("in-use:1", "old:1", "recent:1")):
        big = build_layer({f"data/{i}": (os.urandom(200_000), 0o644)})
        images[name] = store.add_image(name, [shared, big], {"Cmd": ["true"]})
        store.unpack(images[name])
    # Last use: "in-use" longest ago, then "old", then "recent".
    for age, name in ((3000, "in-use:1"), (2000, "old:1"), (1000, "recent:1")):
        t = time.time() - age
        os.utime(os.path.join(tmp_path, "used", images[name].digest.split(":")[1]), (t, t))
        for blob in os.listdir(store.blobs):  # and old enough for blob pruning
            os.utime(os.path.join(store.blobs, blob), (t, t))
    total = int(_du(str(tmp_path)) / 0.9)    # the disk is 90 % full: past the 85 % mark
    policy = GCPolicy(high_percent=85, low_percent=80, min_age=60)
    removed = store.garbage_collect(["docker.io/library/in-use:1"], policy,
                                    usage=lambda root: (_du(root), total))
    # One unused image (the least recently used) brings it under 80 %; the one in use stays.
    assert removed == ["docker.io/library/old:1"]
    assert _du(str(tmp_path)) * 100 < 80 * total
    assert [i.ref for i in store.list_images()] == ["docker.io/library/in-use:1", "docker.io/library/recent:1"]
    assert not os.path.exists(images["old:1"].rootfs)
    with pytest.raises(OSError):
        store.get_blob(images["old:1"].digest)
    # The layer it shared with the others is kept; the images still unpack.
    shared_digest = "sha256:" + hashlib.sha256(shared).hexdigest()
    assert store.get_blob(shared_digest) == shared
    assert os.path.isdir(store.unpack(images["recent:1"]))
    # Below the high mark nothing is collected; an image used within min_age is kept.
    assert store.garbage_collect([], policy, usage=lambda root: (84, 100)) == []
    store.unpack(images["recent:1"])   # used just now
    assert store.garbage_collect([], policy, usage=lambda root: (99, 100)) == ["docker.io/library/in-use:1"]
    assert [i.ref for i in store.list_images()] == ["docker.io/library/recent:1"]
