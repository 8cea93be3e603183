"""A joining agent's credentials: the bootstrap token buys client certificates.

``kubelite agent --token`` holds only the node bootstrap token, which may do nothing but
ask for certificates (``apiserver/nodecerts.py``).  The agent makes two keys, sends a
CSR for each, and keeps the certificates it gets back in ``DATA_DIR/pki`` (keys 0600):
one for the node agent (``system:node:<name>``, group ``system:nodes``) and one for the
node's service proxy (``system:kube-proxy``).  A restart reuses them while they are
valid, name this node and come from the cluster's CA; otherwise it asks again.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubelite.client.rest import Client

PATH = "/v1-kubelite/node-certificates"
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class Credentials:
    """Certificate and key files of the node agent and of the proxy."""

    node_cert: str
    node_key: str
    proxy_cert: str
    proxy_key: str


def _paths(data_dir: str) -> Credentials:
    d = os.path.join(data_dir, "pki")
    return Credentials(os.path.join(d, "node.crt"), os.path.join(d, "node.key"),
                       os.path.join(d, "proxy.crt"), os.path.join(d, "proxy.key"))


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _usable(cert_path: str, key_path: str, cn: str, ca_file: str | None) -> bool:
    """The certificate exists, names ``cn``, is valid for a while yet and comes from our CA."""
    if not (os.path.exists(cert_path) and os.path.exists(key_path)):
        return False
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        if ca_file:
            with open(ca_file, "rb") as f:
                ca = x509.load_pem_x509_certificate(f.read())
            if cert.issuer != ca.subject:
                return False
    except (OSError, ValueError):
        return False
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names == [cn] and cert.not_valid_after_utc - RENEW_BEFORE > dt.datetime.now(dt.UTC)


def _key_and_csr(cn: str) -> tuple[bytes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


async def ensure_credentials(bootstrap: Client, node_name: str, data_dir: str, ca_file: str | None) -> Credentials:
    """This node's certificates: reused when still good, otherwise bought with the token."""
    creds = _paths(data_dir)
    node_cn = f"system:node:{node_name}"
    if _usable(creds.node_cert, creds.node_key, node_cn, ca_file) and \
            _usable(creds.proxy_cert, creds.proxy_key, "system:kube-proxy", ca_file):
        return creds
    os.makedirs(os.path.dirname(creds.node_cert), mode=0o700, exist_ok=True)
    node_key, node_csr = _key_and_csr(node_cn)
    proxy_key, proxy_csr = _key_and_csr("system:kube-proxy")
    out = await bootstrap.request("POST", PATH, body={"nodeName": node_name, "nodeCSR": node_csr,
                                                      "proxyCSR": proxy_csr})
    _write(creds.node_key, node_key, 0o600)
    _write(creds.proxy_key, proxy_key, 0o600)
    _write(creds.node_cert, out["nodeCertificate"].encode(), 0o644)
    _write(creds.proxy_cert, out["proxyCertificate"].encode(), 0o644)
    return creds
