"""Certificates of the HTTPS listener: one per TLS host, picked by SNI.

Each ``spec.tls`` entry of a served Ingress names a Secret (``tls.crt`` / ``tls.key``)
for its hosts; the listener's SSL context asks ``SNIStore.select`` during the handshake
and switches to that host's context.  A client that sends no name, or a name no Ingress
covers, gets a self-signed default certificate made at start (Traefik does the same).
Python's ``ssl`` loads keys only from files, so each certificate is written once to a
private directory (0700, files 0600) named after its content's digest.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubelite.ingress.routes import host_matches

Obj = dict[str, Any]
log = logging.getLogger("kubelite.ingress")


def self_signed(common_name: str = "kubelite ingress default certificate") -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a fresh self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class SNIStore:
    """SSL contexts per certificate and the host patterns each one serves."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        self._contexts: dict[str, ssl.SSLContext] = {}   # digest -> context
        self._hosts: list[tuple[str, str]] = []          # (host pattern, digest), exact ones first
        self.default = self._context(*self_signed())

    def _context(self, cert: bytes, key: bytes) -> ssl.SSLContext:
        digest = hashlib.sha256(cert + key).hexdigest()[:32]
        ctx = self._contexts.get(digest)
        if ctx is not None:
            return ctx
        path = os.path.join(self.directory, digest + ".pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert.rstrip(b"\n") + b"\n" + key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)  # loaded into memory; nothing secret stays on disk
        ctx.set_alpn_protocols(["http/1.1"])
        self._contexts[digest] = ctx
        return ctx

    def server_context(self) -> ssl.SSLContext:
        """The listener's context: the default certificate, switched by SNI during the handshake."""
        self.default.sni_callback = self._sni
        return self.default

    def _sni(self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if not server_name:
            return None
        chosen = self.select(server_name.lower())
        if chosen is not None:
            sock.context = chosen
        return None

    def select(self, host: str) -> ssl.SSLContext | None:
        """The context for an SNI name: an exact host first, then a wildcard."""
        for pattern, digest in self._hosts:
            if host_matches(pattern, host):
                return self._contexts.get(digest)
        return None

    def update(self, entries: list[tuple[list[str], Obj | None]]) -> None:
        """Replace the host → certificate map from (tls hosts, Secret or None) pairs."""
        hosts: list[tuple[str, str]] = []
        for names, secret in entries:
            if secret is None:
                continue
            data = secret.get("data") or {}
            try:
                cert = base64.b64decode(data.get("tls.crt") or "")
                key = base64.b64decode(data.get("tls.key") or "")
                ctx = self._context(cert, key)
            except (ValueError, ssl.SSLError, OSError) as e:
                md = secret.get("metadata") or {}
                log.warning("ingress: secret %s/%s holds no usable certificate: %s",
                            md.get("namespace"), md.get("name"), e)
                continue
            digest = next(d for d, c in self._contexts.items() if c is ctx)
            hosts.extend((h.lower(), digest) for h in names)
        # Exact names are tried before wildcards; among equals the first Ingress wins.
        hosts.sort(key=lambda hd: hd[0].startswith("*."))
        self._hosts = hosts
