"""Certificates and kubeconfig, created at first start as k3s does.

The data directory gets a CA, a serving certificate for the API server (127.0.0.1,
localhost and the host name), an admin client certificate (CN=kubelite-admin,
O=system:masters), the service-account signing key, and a bearer-token file holding the
node bootstrap token.  Existing files are reused, so a restart keeps the same identity
and old kubeconfigs keep working.

Each in-process component gets its own client certificate, with the identity upstream
gives it (``component_cert``): ``system:kube-controller-manager``,
``system:kube-scheduler``, ``system:kube-proxy`` and ``system:node:<name>`` in group
``system:nodes``.  Joining agents trade the bootstrap token for theirs (``sign_csr``).
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BOOTSTRAP_USER = "system:bootstrap:kubelite"
BOOTSTRAP_GROUP = "system:bootstrappers:kubelite:default-node-token"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_file(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically and durably (a temporary file, fsync, rename)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


Files = list[tuple[str, bytes, int]]  # (path, content, mode) to write


def write_files(files: Files) -> None:
    """``write_file`` for each, side by side: each file is fsynced, and the disk flushes
    concurrent syncs together rather than one after another (a fresh data directory gets
    some thirty such files); the first error is raised once all are done."""
    if len(files) < 2:
        for path, data, mode in files:
            write_file(path, data, mode)
        return
    with ThreadPoolExecutor(max_workers=min(len(files), 16), thread_name_prefix="pki") as pool:
        for f in [pool.submit(write_file, path, data, mode) for path, data, mode in files]:
            f.result()


def _pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def _pem_cert(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.PEM)


def _general_names(sans: list[str]) -> list[x509.GeneralName]:
    """Subject alternative names: addresses as IP entries, everything else as DNS names."""
    names: list[x509.GeneralName] = []
    for s in dict.fromkeys(sans):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            names.append(x509.DNSName(s))
    return names


def self_signed(cn: str, sans: list[str], cert_path: str, key_path: str) -> None:
    """A self-signed serving certificate (a joined agent has no CA key, like a kubelet)."""
    k = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(k, hashes.SHA256()))
    write_file(key_path, _pem_key(k))
    write_file(cert_path, _pem_cert(cert), 0o644)


def _subject_of(cert_path: str) -> tuple[str, list[str]]:
    """(CN, sorted O values) of a certificate file."""
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = sorted(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return (cn[0] if cn else ""), orgs


class PKI:
    """The certificate files of one data directory."""

    def __init__(self, data_dir: str):
        self.dir = os.path.join(data_dir, "tls")
        self.ca_cert = os.path.join(self.dir, "ca.crt")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.serving_cert = os.path.join(self.dir, "serving.crt")
        self.serving_key = os.path.join(self.dir, "serving.key")
        self.admin_cert = os.path.join(self.dir, "admin.crt")
        self.admin_key = os.path.join(self.dir, "admin.key")
        self.token_file = os.path.join(self.dir, "tokens.csv")
        self.service_account_key = os.path.join(self.dir, "service-account.key")

    def ensure(self, extra_sans: list[str] | None = None) -> None:
        """Create whatever is missing."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        # Made in memory first, then every new file written at once (the CA is not read back).
        files: Files = []
        if not (os.path.exists(self.ca_cert) and os.path.exists(self.ca_key)):
            ca, ca_key, files = self._make_ca()
        else:
            ca, ca_key = self._ca()
        sans = ["127.0.0.1", "localhost", socket.gethostname()] + list(extra_sans or [])
        if not os.path.exists(self.serving_cert) or not self._covers(self.serving_cert, sans):
            files += self._issue(ca, ca_key, "kube-apiserver", [], sans, server=True,
                                 cert_path=self.serving_cert, key_path=self.serving_key)
        if not os.path.exists(self.admin_cert):
            files += self._issue(ca, ca_key, "kubelite-admin", ["system:masters"], [], server=False,
                                 cert_path=self.admin_cert, key_path=self.admin_key)
        files += self._token_file()
        write_files(files)

    def set_bootstrap_token(self, token: str) -> None:
        """Make ``token`` the node bootstrap token (a server given ``--token`` before its first start)."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_files(self._token_line(token))

    def _token_line(self, token: str) -> Files:
        return [(self.token_file,
                 f'{token},{BOOTSTRAP_USER},{BOOTSTRAP_USER},"system:bootstrappers,{BOOTSTRAP_GROUP}"\n'.encode(), 0o600)]

    def _token_file(self) -> Files:
        """The node bootstrap token (token,user,uid,"groups" — kube-apiserver's
        --token-auth-file format).  Its holder is only a bootstrapper: it may fetch node
        certificates and nothing else.  An older file that made agents system:masters
        keeps its token but loses that group."""
        tok = ""
        if os.path.exists(self.token_file):
            with open(self.token_file) as f:
                first = f.readline()
            if BOOTSTRAP_GROUP in first:
                return []
            tok = first.split(",", 1)[0].strip()
        return self._token_line(tok or secrets.token_hex(24))

    def _covers(self, cert_path: str, sans: list[str]) -> bool:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(ext.get_values_for_type(x509.DNSName))
        return all(s in have for s in sans)

    def _make_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Files]:
        """A new CA, and its files to write."""
        k = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kubelite-ca@{int(dt.datetime.now().timestamp())}")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(k, hashes.SHA256()))
        return cert, k, [(self.ca_key, _pem_key(k), 0o600), (self.ca_cert, _pem_cert(cert), 0o644)]

    def _issue(self, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str, orgs: list[str],
               sans: list[str], *,
               server: bool, cert_path: str, key_path: str) -> Files:
        """A new key and certificate signed by the CA: the files to write."""
        k = _key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        now = dt.datetime.now(dt.UTC)
        b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.subject)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        return [(key_path, _pem_key(k), 0o600), (cert_path, _pem_cert(cert), 0o644)]

    def issue_client(self, cn: str, orgs: list[str], cert_path: str, key_path: str) -> None:
        """Issue a client certificate signed by this CA (node agents, tests)."""
        ca, ca_key = self._ca()
        write_files(self._issue(ca, ca_key, cn, orgs, [], server=False, cert_path=cert_path, key_path=key_path))

    def issue_serving(self, cn: str, sans: list[str], cert_path: str, key_path: str) -> None:
        """Issue a serving certificate signed by this CA (node agents' HTTPS API)."""
        ca, ca_key = self._ca()
        write_files(self._issue(ca, ca_key, cn, [], sans, server=True, cert_path=cert_path, key_path=key_path))

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        with open(self.ca_key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.ca_key}: not an EC private key")
        with open(self.ca_cert, "rb") as f:
            return x509.load_pem_x509_certificate(f.read()), key

    def component_paths(self, name: str) -> tuple[str, str]:
        """(cert, key) paths of a component's client certificate (which ``component_cert`` issues)."""
        return os.path.join(self.dir, f"{name}.crt"), os.path.join(self.dir, f"{name}.key")

    def component_cert(self, name: str, cn: str, orgs: list[str]) -> tuple[str, str]:
        """(cert, key) paths of a component's client certificate, issued on first use or
        when the identity it should carry changed."""
        self.component_certs([(name, cn, orgs)])
        return self.component_paths(name)

    def component_certs(self, wanted: list[tuple[str, str, list[str]]]) -> None:
        """``component_cert`` for each (name, cn, orgs), their files written at once (a fresh
        start issues about ten)."""
        files: Files = []
        ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
        for name, (cn, orgs) in {name: (cn, orgs) for name, cn, orgs in wanted}.items():
            cert_path, key_path = self.component_paths(name)
            if not (os.path.exists(cert_path) and os.path.exists(key_path)
                    and _subject_of(cert_path) == (cn, sorted(orgs))):
                ca = ca or self._ca()
                files += self._issue(*ca, cn, orgs, [], server=False, cert_path=cert_path, key_path=key_path)
        write_files(files)

    def sign_csr(self, csr_pem: bytes, cn: str, orgs: list[str]) -> bytes:
        """A client certificate for cn/orgs over the public key of a signed CSR (PEM).

        The CSR's own subject is ignored: the caller decides the identity."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("the certificate signing request is not signed by its key")
        ca, ca_key = self._ca()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.subject)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return _pem_cert(cert)

    def ca_pem(self) -> bytes:
        """The CA certificate (PEM)."""
        with open(self.ca_cert, "rb") as f:
            return f.read()

    def node_token(self) -> str:
        """The bootstrap token agents use to join (first entry of the token file)."""
        with open(self.token_file) as f:
            return f.readline().split(",", 1)[0].strip()

    def write_kubeconfig(self, path: str, server: str) -> None:
        """Write an admin kubeconfig (mode 0600) with context ``kubelite``."""
        def b64(p: str) -> str:
            with open(p, "rb") as f:
                return base64.b64encode(f.read()).decode()
        kc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "kubelite", "cluster": {"server": server,
                                                          "certificate-authority-data": b64(self.ca_cert)}}],
            "users": [{"name": "kubelite-admin", "user": {"client-certificate-data": b64(self.admin_cert),
                                                          "client-key-data": b64(self.admin_key)}}],
            "contexts": [{"name": "kubelite", "context": {"cluster": "kubelite", "user": "kubelite-admin",
                                                          "namespace": "default"}}],
            "current-context": "kubelite",
        }
        write_file(path, yaml.safe_dump(kc, sort_keys=False).encode(), 0o600)
