"""Service-account tokens: signed JWTs, as kube-apiserver issues and checks them.

A token is an ES256 JWT signed with the data directory's service-account key
(``tls/service-account.key``).  Its claims are upstream's: ``iss``, ``sub =
system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``, ``iat``, ``nbf``, ``jti`` and a
private ``kubernetes.io`` claim naming the namespace, the ServiceAccount (name and uid)
and, for bound tokens, the Pod, Secret or Node the token dies with.

Checking a token is two steps.  ``TokenIssuer.verify`` is pure: signature, issuer,
audience and times (with upstream's one-minute leeway), against an injectable clock so
expiry is testable without waiting.  ``TokenIssuer.validate_objects`` then asks the store
whether the objects named in the claims still exist with the same uid: a token of a
deleted ServiceAccount, or one bound to a deleted Pod, stops working at once.

The discovery documents (``/.well-known/openid-configuration``, ``/openid/v1/jwks``) let
other parties verify these tokens without asking the API server.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

Obj = dict[str, Any]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PREFIX = "system:serviceaccount:"
LEEWAY = 60          # go-jose's default leeway for exp / nbf / iat, which upstream keeps
MIN_EXPIRATION = 600  # TokenRequest: "may not specify a duration less than 10 minutes"
MAX_EXPIRATION = 1 << 32
DEFAULT_EXPIRATION = 3600
VERIFIED_CACHE = 4096  # tokens whose signature was checked, remembered

# Lookup of a live object: (kind, namespace, name) -> the object or None.
ObjectLookup = Callable[[str, str, str], Awaitable[Obj | None]]


class InvalidToken(Exception):
    """A token that must not authenticate anyone; the message says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise InvalidToken("malformed token") from None


def load_or_create_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The service-account signing key (P-256), created 0600 on first use."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: not an EC private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)
    return key


def is_jwt(token: str) -> bool:
    """Three dot-separated parts, the first a JSON header: worth trying as a JWT."""
    return token.count(".") == 2 and token.startswith("ey")


@dataclass
class Claims:
    """What a verified service-account token says about its bearer."""

    namespace: str
    sa_name: str
    sa_uid: str
    audiences: list[str]
    jti: str = ""
    expires: int = 0
    pod: tuple[str, str] | None = None     # (name, uid)
    secret: tuple[str, str] | None = None
    node: tuple[str, str] | None = None
    raw: Obj = field(default_factory=dict)

    @property
    def username(self) -> str:
        """system:serviceaccount:<namespace>:<name>."""
        return f"{SA_PREFIX}{self.namespace}:{self.sa_name}"

    def extra(self) -> dict[str, list[str]]:
        """The user's extra fields, as upstream fills them for bound tokens."""
        out: dict[str, list[str]] = {}
        if self.jti:
            out["authentication.kubernetes.io/credential-id"] = [f"JTI={self.jti}"]
        if self.pod:
            out["authentication.kubernetes.io/pod-name"] = [self.pod[0]]
            out["authentication.kubernetes.io/pod-uid"] = [self.pod[1]]
        if self.node:
            out["authentication.kubernetes.io/node-name"] = [self.node[0]]
            out["authentication.kubernetes.io/node-uid"] = [self.node[1]]
        return out


def service_account_groups(namespace: str) -> list[str]:
    """The groups of every service account of a namespace."""
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]


def split_sa_username(name: str) -> tuple[str, str] | None:
    """(namespace, name) of a system:serviceaccount:<ns>:<name> user name, else None."""
    if not name.startswith(SA_PREFIX):
        return None
    ns, sep, sa = name[len(SA_PREFIX):].partition(":")
    if not sep or not ns or not sa or ":" in sa:
        return None
    return ns, sa


class TokenIssuer:
    """Signs and verifies service-account JWTs with one key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, issuer: str = DEFAULT_ISSUER,
                 audiences: list[str] | None = None, jwks_uri: str = "",
                 clock: Callable[[], float] = time.time):
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.audiences = list(audiences or [issuer])
        self.jwks_uri = jwks_uri or f"{issuer}/openid/v1/jwks"
        self.clock = clock
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())
        self._verified: collections.OrderedDict[str, Obj] = collections.OrderedDict()

    # -- issuing -------------------------------------------------------------------------------
    def issue(self, *, namespace: str, sa: Obj, audiences: list[str], expiration: int,
              pod: Obj | None = None, secret: Obj | None = None, node: Obj | None = None) -> tuple[str, int]:
        """A signed token for the ServiceAccount ``sa``; returns (token, exp as Unix time)."""
        now = int(self.clock())
        exp = now + expiration
        private: Obj = {"namespace": namespace,
                        "serviceaccount": {"name": _md(sa, "name"), "uid": _md(sa, "uid")}}
        for label, obj in (("pod", pod), ("secret", secret), ("node", node)):
            if obj is not None:
                private[label] = {"name": _md(obj, "name"), "uid": _md(obj, "uid")}
        claims = {"aud": audiences, "exp": exp, "iat": now, "iss": self.issuer, "jti": str(uuid.uuid4()),
                  "kubernetes.io": private, "nbf": now, "sub": f"{SA_PREFIX}{namespace}:{_md(sa, 'name')}"}
        return self._sign(claims), exp

    def _sign(self, claims: Obj) -> str:
        header = {"alg": "ES256", "kid": self.kid}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    # -- verifying -----------------------------------------------------------------------------
    def verify(self, token: str, audiences: list[str] | None = None) -> Claims:
        """Signature, issuer, audience and time checks; raises InvalidToken."""
        claims = self._signed_claims(token)
        if claims.get("iss") != self.issuer:
            raise InvalidToken("token issuer is not accepted")
        self._check_times(claims)
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
        wanted = audiences or self.audiences
        if not any(a in wanted for a in token_auds):
            raise InvalidToken("token audiences " + str(token_auds) + " is invalid for the target audiences "
                               + str(wanted))
        return _claims(claims, [a for a in token_auds if a in wanted])

    def _signed_claims(self, token: str) -> Obj:
        """The claims of a token whose signature is ours.  Signature checks dominate the
        cost of a request, so good signatures are remembered (a bounded LRU keyed by the
        whole token); times, audience and the objects are still checked on every use."""
        cached = self._verified.get(token)
        if cached is not None:
            self._verified.move_to_end(token)
            return cached
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("malformed token")
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
        except orjson.JSONDecodeError:
            raise InvalidToken("malformed token") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        if header.get("alg") != "ES256" or header.get("kid", self.kid) != self.kid:
            raise InvalidToken("invalid signature")
        sig = _unb64(parts[2])
        if len(sig) != 64:
            raise InvalidToken("invalid signature")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            self._public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise InvalidToken("invalid signature") from None
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return claims

    def _check_times(self, claims: Obj) -> None:
        now = self.clock()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not isinstance(exp, (int, float)) or now - LEEWAY > exp:
            raise InvalidToken("service account token has expired")
        if isinstance(nbf, (int, float)) and now + LEEWAY < nbf:
            raise InvalidToken("service account token is not valid yet")
        if isinstance(iat, (int, float)) and now + LEEWAY < iat:
            raise InvalidToken("service account token issued in the future")

    async def validate_objects(self, c: Claims, lookup: ObjectLookup) -> None:
        """The ServiceAccount and any bound object still exist with the claimed uid."""
        sa = await lookup("ServiceAccount", c.namespace, c.sa_name)
        if sa is None:
            raise InvalidToken(f'serviceaccounts "{c.sa_name}" not found')
        if _md(sa, "uid") != c.sa_uid:
            raise InvalidToken(f"service account UID ({_md(sa, 'uid')}) does not match claim ({c.sa_uid})")
        for kind, ref, namespace in (("Pod", c.pod, c.namespace), ("Secret", c.secret, c.namespace),
                                     ("Node", c.node, "")):
            if ref is None:
                continue
            obj = await lookup(kind, namespace, ref[0])
            if obj is None:
                raise InvalidToken(f'{kind.lower()}s "{ref[0]}" not found')
            if _md(obj, "uid") != ref[1]:
                raise InvalidToken(f"{kind} UID ({_md(obj, 'uid')}) does not match claim ({ref[1]})")
            if kind != "Node" and (obj.get("metadata") or {}).get("deletionTimestamp"):
                raise InvalidToken("token has been invalidated")

    # -- discovery -----------------------------------------------------------------------------
    def openid_configuration(self) -> Obj:
        """/.well-known/openid-configuration."""
        return {"issuer": self.issuer, "jwks_uri": self.jwks_uri, "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["ES256"]}

    def jwks(self) -> Obj:
        """/openid/v1/jwks: the public key in JWK form."""
        nums = self._public.public_numbers()
        return {"keys": [{"use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
                          "x": _b64(nums.x.to_bytes(32, "big")), "y": _b64(nums.y.to_bytes(32, "big"))}]}


def _md(obj: Obj, key: str) -> str:
    return str((obj.get("metadata") or {}).get(key) or "")


def _ref(private: Obj, key: str) -> tuple[str, str] | None:
    v = private.get(key)
    if not isinstance(v, dict) or not v.get("name"):
        return None
    return str(v.get("name")), str(v.get("uid") or "")


def _claims(raw: Obj, audiences: list[str]) -> Claims:
    private = raw.get("kubernetes.io")
    if not isinstance(private, dict):
        raise InvalidToken("token lacks the kubernetes.io claims")
    sa = private.get("serviceaccount") or {}
    ns = private.get("namespace")
    if not isinstance(ns, str) or not isinstance(sa, dict) or not sa.get("name"):
        raise InvalidToken("token lacks the kubernetes.io claims")
    sub = split_sa_username(str(raw.get("sub") or ""))
    if sub != (ns, sa.get("name")):
        raise InvalidToken("token subject does not match its kubernetes.io claims")
    exp = raw.get("exp")
    return Claims(namespace=ns, sa_name=str(sa["name"]), sa_uid=str(sa.get("uid") or ""), audiences=audiences,
                  jti=str(raw.get("jti") or ""), expires=int(exp) if isinstance(exp, (int, float)) else 0,
                  pod=_ref(private, "pod"), secret=_ref(private, "secret"), node=_ref(private, "node"), raw=raw)
