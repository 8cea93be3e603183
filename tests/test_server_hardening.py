"""The server is as safe as kube-apiserver against its own data directory and its clients:
private file modes whatever existed before, limits on connections and requests in flight,
and /readyz that says ok only when everything local is serving."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import API_ONLY, start_server


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def _loosen(data: Path) -> None:
    """Every directory 0755 and every file 0644 under data, as a careless copy would leave them."""
    for root, _dirs, files in os.walk(data):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def _secret_modes(data: Path) -> dict[str, int]:
    """The modes of what must be private: the data dir, tls/ and db/ and their secrets, the kubeconfig."""
    out = {".": _mode(data)}
    for sub in ("tls", "db"):
        out[sub] = _mode(data / sub)
        for f in (data / sub).iterdir():
            if not f.name.endswith(".crt"):
                out[f"{sub}/{f.name}"] = _mode(f)
    out["kubeconfig"] = _mode(data / "kubeconfig")
    return out


def test_data_directory_and_secrets_are_private_whatever_existed_before(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # whatever the umask said
    (data / "notes.txt").write_text("left by the user")
    srv = start_server(tmp_path, *API_ONLY, data_dir=data)
    try:
        srv.kubectl("create", "secret", "generic", "s", "--from-literal=k=v", check=True)
        modes = _secret_modes(data)
    finally:
        srv.stop()
    assert {"db/state.db", "db/state.db-wal", "db/state.db-shm", "tls/ca.key", "tls/tokens.csv"} <= set(modes)
    assert modes == {k: (0o700 if k in (".", "tls", "db") else 0o600) for k in modes}

    # A data directory restored with loose modes (dirs 0755, files 0644) is tightened at start.
    _loosen(data)
    assert _mode(data / "db" / "state.db") == 0o644
    srv = start_server(tmp_path, *API_ONLY, data_dir=data, port=srv.port)
    try:
        srv.kubectl("create", "secret", "generic", "s2", "--from-literal=k=v", check=True)
        modes = _secret_modes(data)
    finally:
        srv.stop()
    assert {"db/state.db", "db/state.db-wal", "db/state.db-shm"} <= set(modes)
    assert modes == {k: (0o700 if k in (".", "tls", "db") else 0o600) for k in modes}
    # Certificates are public and the user's own files are left alone.
    assert _mode(data / "tls" / "ca.crt") == 0o644
    assert _mode(data / "notes.txt") == 0o644
