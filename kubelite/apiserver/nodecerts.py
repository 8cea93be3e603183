"""Certificates for joining agents: the bootstrap token buys a node identity.

Upstream, a kubelet joins with a bootstrap token, posts a CertificateSigningRequest for
``system:node:<name>`` (group ``system:nodes``) and the controller manager approves and
signs it.  kubelite has no CertificateSigningRequest API; as k3s does, the API server
signs directly: ``POST /v1-kubelite/node-certificates`` with ``{"nodeName": ...,
"nodeCSR": PEM, "proxyCSR": PEM}`` returns a client certificate for the node agent
(``system:node:<name>``, ``system:nodes``), one for its service proxy
(``system:kube-proxy``) and the cluster CA.  Only holders of the node bootstrap token may
call it (ClusterRole ``kubelite:node-bootstrapper``).  The subject of each CSR is
ignored: the server decides the identity, the CSR only proves possession of the key.
"""
from __future__ import annotations

from typing import Any, Protocol

import orjson
from aiohttp import web

from kubelite.api import errors
from kubelite.api.validation_common import is_dns1123_subdomain
from kubelite.apiserver import negotiation as neg

PATH = "/v1-kubelite/node-certificates"
NODES_GROUP = "system:nodes"
PROXY_USER = "system:kube-proxy"


class CertSigner(Protocol):
    """Signs client certificates with the cluster CA (``pki.PKI``)."""

    def sign_csr(self, csr_pem: bytes, cn: str, orgs: list[str]) -> bytes:
        """A PEM client certificate for ``cn``/``orgs`` over the CSR's public key;
        raises ValueError for a malformed CSR or a bad signature."""
        ...

    def ca_pem(self) -> bytes:
        """The cluster CA certificate (PEM)."""
        ...


class NodeCertificates:
    """The endpoint, over the CA's signer (None: this server signs nothing)."""

    def __init__(self, signer: CertSigner | None):
        self.signer = signer

    async def handle(self, request: web.Request) -> web.Response:
        """POST /v1-kubelite/node-certificates."""
        if request.method != "POST":
            raise errors.method_not_allowed()
        if self.signer is None:
            raise errors.service_unavailable("this API server does not sign node certificates")
        try:
            body: Any = orjson.loads(await neg.read_body(request))
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a JSON object")
        node = body.get("nodeName")
        if not isinstance(node, str) or not node or is_dns1123_subdomain(node):
            raise errors.bad_request(f"nodeName: Invalid value: {node!r}: must be a DNS subdomain")
        out: dict[str, str] = {"caCertificate": self.signer.ca_pem().decode()}
        for key, field, cn, orgs in (("nodeCertificate", "nodeCSR", f"system:node:{node}", [NODES_GROUP]),
                                     ("proxyCertificate", "proxyCSR", PROXY_USER, [])):
            csr = body.get(field)
            if not isinstance(csr, str) or not csr:
                raise errors.bad_request(f"{field}: Required value: a PEM certificate signing request")
            try:
                out[key] = self.signer.sign_csr(csr.encode(), cn, orgs).decode()
            except ValueError as e:
                raise errors.bad_request(f"{field}: {e}") from None
        return web.Response(body=orjson.dumps(out), content_type="application/json")
