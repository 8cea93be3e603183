"""The cluster's shared secrets kept in the datastore, so that more servers can join it (k3s's bootstrap data).

Servers on one etcd must trust one CA, verify each other's service-account tokens and
accept one node bootstrap token.  The first server to start on an etcd stores those files
(``ca.crt``, ``ca.key``, ``service-account.key``, ``tokens.csv``) under one key,
encrypted with a key derived from the cluster's join secret (the node bootstrap token); a
server started later with ``--token`` (the ``K10…`` string ``kubelite token`` prints, or
the bare secret) reads them back, checks the CA against the token's hash, and writes them
into its own data directory before it makes its serving and admin certificates.  Nothing
is ever copied by hand, and the datastore alone does not give the CA key away.

Only the API server process calls this, at start-up and before it serves: it is the one
component that may touch the store.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kubelite import jointoken
from kubelite.apiserver.tokens import load_or_create_key
from kubelite.pki import PKI, write_file
from kubelite.store.base import KeyExists, Store

KEY = "/kubelite/bootstrap"
SHARED = ("ca.crt", "ca.key", "service-account.key", "tokens.csv")
# Files issued from the CA: made again by PKI.ensure() when the CA is replaced by the cluster's.
ISSUED = ("serving.crt", "serving.key", "admin.crt", "admin.key")


class BootstrapError(Exception):
    """The datastore's bootstrap data cannot be used with this token or this data directory."""


def _derive(secret: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2 ** 14, r=8, p=1).derive(secret.encode())


def seal(files: dict[str, bytes], secret: str) -> bytes:
    """The files, encrypted (AES-256-GCM) with a key derived from ``secret``."""
    salt, nonce = os.urandom(16), os.urandom(12)
    plain = json.dumps({name: base64.b64encode(data).decode() for name, data in files.items()}).encode()
    ct = AESGCM(_derive(secret, salt)).encrypt(nonce, plain, KEY.encode())
    return json.dumps({"v": 1, "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode(),
                       "data": base64.b64encode(ct).decode()}).encode()


def unseal(blob: bytes, secret: str) -> dict[str, bytes]:
    """The files ``seal`` stored; BootstrapError if ``secret`` is not the one they were sealed with."""
    try:
        doc = json.loads(blob)
        salt, nonce, ct = (base64.b64decode(doc[k]) for k in ("salt", "nonce", "data"))
    except (ValueError, KeyError, TypeError) as e:
        raise BootstrapError(f"the bootstrap data at {KEY} in the datastore is damaged ({e})") from None
    try:
        plain = AESGCM(_derive(secret, salt)).decrypt(nonce, ct, KEY.encode())
    except InvalidTag:
        raise BootstrapError("--token does not open the cluster's bootstrap data in the datastore: it is not the "
                             "token of the cluster this etcd holds (`kubelite token` on one of its servers prints "
                             "it)") from None
    return {name: base64.b64decode(data) for name, data in json.loads(plain).items()}


def _read(pki: PKI, name: str) -> bytes | None:
    try:
        with open(os.path.join(pki.dir, name), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _take(pki: PKI, files: dict[str, bytes], *, replace: bool) -> None:
    """Write the cluster's files into this data directory (``replace``: over ones this start made)."""
    differ = [n for n in SHARED if n in files and (local := _read(pki, n)) is not None and local != files[n]]
    if differ and not replace:
        raise BootstrapError(f"{', '.join(differ)} in {pki.dir} differ from the cluster's in the datastore: this data "
                             f"directory belongs to another cluster (move {pki.dir} away to take this cluster's; "
                             f"kubeconfigs made from it stop working)")
    if "ca.crt" in differ:
        for name in ISSUED:  # signed by the CA being replaced
            try:
                os.unlink(os.path.join(pki.dir, name))
            except FileNotFoundError:
                pass
    for name in SHARED:
        if name in files and _read(pki, name) != files[name]:
            os.makedirs(pki.dir, mode=0o700, exist_ok=True)
            write_file(os.path.join(pki.dir, name), files[name], 0o644 if name.endswith(".crt") else 0o600)


async def share(store: Store, pki: PKI, token: str, ensure: Callable[[], None]) -> str:
    """Store this cluster's secrets in ``store`` ("stored"), or take the ones there ("joined");
    see the module docstring.

    ``token``: the server's ``--token`` ("" for none); ``ensure``: makes whatever certificate
    or key is missing in the data directory (``PKI.ensure`` with the server's names).
    """
    parsed = jointoken.parse(token) if token else None
    kv = await store.get(KEY)
    made_now = False
    if kv is None:
        had_ca = _read(pki, "ca.crt") is not None
        if parsed is not None:
            local = _read(pki, "tokens.csv")
            if local is not None and jointoken.read_bootstrap_token(pki.token_file) != parsed.secret:
                raise BootstrapError(f"--token differs from the bootstrap token in {pki.token_file}")
            if local is None:
                pki.set_bootstrap_token(parsed.secret)
        ensure()
        if parsed is not None and not parsed.matches(_read(pki, "ca.crt") or b""):
            raise BootstrapError("the CA hash in --token is not this data directory's CA, and the datastore holds no "
                                 "cluster to join")
        load_or_create_key(pki.service_account_key)  # else the API server would make one of its own later
        secret = jointoken.read_bootstrap_token(pki.token_file)
        files = {n: data for n in SHARED if (data := _read(pki, n)) is not None}
        try:
            await store.create(KEY, seal(files, secret))
            return "stored"
        except KeyExists:
            kv = await store.get(KEY)  # another server started at the same moment and won
            made_now = not had_ca
        if kv is None:
            raise BootstrapError(f"{KEY} vanished from the datastore while this server started")
    if parsed is not None:
        secret = parsed.secret
    elif _read(pki, "tokens.csv") is not None:
        secret = jointoken.read_bootstrap_token(pki.token_file)  # a restart of one of the cluster's servers
    else:
        raise BootstrapError("the datastore already holds a cluster: start this server with --token (the K10… token "
                             "`kubelite token` prints on one of its servers)")
    files = unseal(kv.value, secret)
    if parsed is not None and not parsed.matches(files.get("ca.crt", b"")):
        raise BootstrapError("the cluster's CA in the datastore does not have the hash --token pins")
    _take(pki, files, replace=made_now)
    ensure()
    return "joined"
