"""`kubelite image import` and `kubelite image ls` on a fresh data directory."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kubelite.cli_extra import human_size
from kubelite.images.store import ImageStore, default_root


def kubelite(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, **(env or {})))


@pytest.fixture
def app_dir(tmp_path):
    d = tmp_path / "app"
    d.mkdir()
    (d / "server.py").write_text("print('hello from the image')\n")
    return d


def test_import_then_ls_shows_the_image_like_crictl(tmp_path, app_dir):
    data = tmp_path / "data"
    p = kubelite("image", "import", "myapp:v1", str(app_dir), "--cmd", "python3 server.py", "--env", "MODE=demo",
                 "--env", "GREETING=a=b", "--workdir", "/", "--port", "8080", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("imported docker.io/library/myapp:v1 (")

    image = ImageStore(default_root(str(data))).resolve("myapp:v1")
    assert image is not None
    assert image.cmd == ["python3", "server.py"]
    assert image.env_dict() == {"MODE": "demo", "GREETING": "a=b"}
    assert image.working_dir == "/"
    assert image.exposed_ports == ["8080/tcp"]

    p = kubelite("image", "ls", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    row = next(line.split() for line in lines if line.startswith("docker.io/library/myapp "))
    assert row == ["docker.io/library/myapp", "v1", image.id.removeprefix("sha256:")[:13], human_size(image.size)]
    # The tutorial's built-in images are listed too, as the node would pull them.
    assert any(line.split()[:2] == ["gcr.io/google-samples/kubernetes-bootcamp", "v1"] for line in lines)
    # Columns line up: every row starts its TAG where the header does.
    tag_col = lines[0].index("TAG")
    assert all(line[tag_col - 1] == " " and line[tag_col] != " " for line in lines)


def test_ls_quiet_prints_full_ids(tmp_path, app_dir):
    data = tmp_path / "data"
    assert kubelite("image", "import", "myapp:v1", str(app_dir), "--cmd", "true", "--data-dir", str(data)).returncode == 0
    p = kubelite("image", "ls", "-q", "--data-dir", str(data))
    ids = p.stdout.split()
    assert ImageStore(default_root(str(data))).resolve("myapp:v1").id in ids
    assert all(i.startswith("sha256:") and len(i) == 71 for i in ids)


def test_data_dir_defaults_like_the_server(tmp_path, app_dir):
    data = tmp_path / "from-env"
    env = {"KUBELITE_DATA_DIR": str(data)}
    assert kubelite("image", "import", "registry.local:5000/team/app:2.0", str(app_dir), "--cmd", "true",
                    env=env).returncode == 0
    p = kubelite("image", "ls", env=env)
    assert any(line.split()[:2] == ["registry.local:5000/team/app", "2.0"] for line in p.stdout.splitlines())
    assert (data / "images" / "index.json").exists()


def test_reimport_retags_to_the_new_content(tmp_path, app_dir):
    data = tmp_path / "data"
    kubelite("image", "import", "myapp:v1", str(app_dir), "--cmd", "python3 server.py", "--data-dir", str(data))
    first = ImageStore(default_root(str(data))).resolve("myapp:v1").id
    (app_dir / "server.py").write_text("print('v2')\n")
    kubelite("image", "import", "myapp:v1", str(app_dir), "--cmd", "python3 server.py", "--data-dir", str(data))
    p = kubelite("image", "ls", "--data-dir", str(data))
    rows = [line.split() for line in p.stdout.splitlines() if line.startswith("docker.io/library/myapp ")]
    assert len(rows) == 1 and rows[0][2] != first.removeprefix("sha256:")[:13]


@pytest.mark.parametrize("args,message", [
    (["image", "import", "myapp:v1", "/nonexistent-dir", "--cmd", "true"], "not a directory"),
    (["image", "import", "MyApp:v1", ".", "--cmd", "true"], "invalid reference format"),
    (["image", "import", "myapp:v1", ".", "--cmd", "true", "--env", "NOEQUALS"], "expected K=V"),
    (["image", "import", "myapp:v1", ".", "--cmd", ""], "--cmd must not be empty"),
])
def test_import_errors(tmp_path, args, message):
    p = kubelite(*args, "--data-dir", str(tmp_path / "data"))
    assert p.returncode != 0
    assert message in p.stderr


@pytest.mark.parametrize("n,text", [(0, "0B"), (535, "535B"), (2240, "2.24kB"), (72_800_000, "72.8MB"),
                                    (1_000_000_000, "1GB")])
def test_human_size(n, text):
    assert human_size(n) == text
