"""Image references, the OCI store, and the built-in tutorial images."""
import gzip
import io
import json
import os
import tarfile

import pytest

from kubelite.images import builtin, reference
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
    assert config["config"]["Cmd"] == ["python3", "server.py"]
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    layer = (tmp_path / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        assert "app/server.py" in tar.getnames()
    assert os.path.isfile(os.path.join(image.rootfs, "app", "server.py"))
    assert image.repo_digest == "docker.io/jocatalin/kubernetes-bootcamp@" + image.digest


def test_builtin_images_exist_in_every_spelling_and_version(tmp_path):
    store = ImageStore(str(tmp_path))
    v1 = store.resolve("gcr.io/google-samples/kubernetes-bootcamp:v1")
    v2 = store.resolve("docker.io/jocatalin/kubernetes-bootcamp:v2")
    assert v1 is not None and v2 is not None and v1.digest != v2.digest
    assert b'VERSION = "2"' in builtin.app_source("2")
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
