"""Service-account tokens and static tokens without a server: the verifier runs on an
injected clock, so expiry is checked without waiting."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kubelite.apiserver.authn import StaticTokens
from kubelite.apiserver.tokens import LEEWAY, InvalidToken, TokenIssuer, load_or_create_key
from kubelite.pki import BOOTSTRAP_GROUP, PKI

SA = {"metadata": {"name": "robot", "namespace": "ns", "uid": "sa-uid"}}
POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"}}


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def issuer(clock: Clock) -> TokenIssuer:
    return TokenIssuer(ec.generate_private_key(ec.SECP256R1()), clock=clock)


def test_token_carries_upstreams_claims(issuer: TokenIssuer, clock: Clock):
    token, exp = issuer.issue(namespace="ns", sa=SA, audiences=["api"], expiration=600, pod=POD)
    c = _claims(token)
    assert c["sub"] == "system:serviceaccount:ns:robot"
    assert c["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert c["aud"] == ["api"]
    assert c["iat"] == c["nbf"] == int(clock.t) and c["exp"] == exp == int(clock.t) + 600
    assert c["kubernetes.io"] == {"namespace": "ns", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
                                  "pod": {"name": "p", "uid": "pod-uid"}}
    assert c["jti"]


def test_token_expires_after_exp_plus_leeway(issuer: TokenIssuer, clock: Clock):
    token, exp = issuer.issue(namespace="ns", sa=SA, audiences=issuer.audiences, expiration=600)
    clock.t = exp + LEEWAY  # still inside upstream's one-minute leeway
    assert issuer.verify(token).username == "system:serviceaccount:ns:robot"
    clock.t = exp + LEEWAY + 1
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token)


def test_token_not_valid_before_its_time(issuer: TokenIssuer, clock: Clock):
    token, _ = issuer.issue(namespace="ns", sa=SA, audiences=issuer.audiences, expiration=600)
    clock.t -= LEEWAY + 10
    with pytest.raises(InvalidToken, match="not valid yet"):
        issuer.verify(token)


def test_audience_must_match(issuer: TokenIssuer):
    token, _ = issuer.issue(namespace="ns", sa=SA, audiences=["vault"], expiration=600)
    with pytest.raises(InvalidToken, match="audiences"):
        issuer.verify(token)
    assert issuer.verify(token, ["vault"]).audiences == ["vault"]


def test_tampered_or_foreign_tokens_are_refused(issuer: TokenIssuer, clock: Clock):
    token, _ = issuer.issue(namespace="ns", sa=SA, audiences=issuer.audiences, expiration=600)
    head, body, sig = token.split(".")
    forged = dict(_claims(token), sub="system:serviceaccount:kube-system:admin")
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="signature"):
        issuer.verify(f"{head}.{forged_body}.{sig}")
    other = TokenIssuer(ec.generate_private_key(ec.SECP256R1()), clock=clock)
    with pytest.raises(InvalidToken):
        issuer.verify(other.issue(namespace="ns", sa=SA, audiences=issuer.audiences, expiration=600)[0])


def test_deleted_or_recreated_objects_invalidate_the_token(issuer: TokenIssuer):
    token, _ = issuer.issue(namespace="ns", sa=SA, audiences=issuer.audiences, expiration=600, pod=POD)
    claims = issuer.verify(token)
    live: dict[tuple[str, str], dict] = {("ServiceAccount", "robot"): SA, ("Pod", "p"): POD}

    async def lookup(kind: str, ns: str, name: str) -> dict | None:
        return live.get((kind, name))
    asyncio.run(issuer.validate_objects(claims, lookup))
    live[("Pod", "p")] = {"metadata": {"name": "p", "uid": "another"}}
    with pytest.raises(InvalidToken, match="Pod UID"):
        asyncio.run(issuer.validate_objects(claims, lookup))
    del live[("Pod", "p")]
    with pytest.raises(InvalidToken, match="not found"):
        asyncio.run(issuer.validate_objects(claims, lookup))
    live[("Pod", "p")] = POD
    del live[("ServiceAccount", "robot")]
    with pytest.raises(InvalidToken, match='serviceaccounts "robot" not found'):
        asyncio.run(issuer.validate_objects(claims, lookup))


def test_jwks_verifies_a_token_without_the_server(issuer: TokenIssuer):
    token, _ = issuer.issue(namespace="ns", sa=SA, audiences=issuer.audiences, expiration=600)
    jwk = issuer.jwks()["keys"][0]
    assert jwk["kty"] == "EC" and jwk["alg"] == "ES256" and jwk["kid"] == json.loads(
        base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]

    def num(v: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")
    key = ec.EllipticCurvePublicNumbers(num(jwk["x"]), num(jwk["y"]), ec.SECP256R1()).public_key()
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if wrong
    assert issuer.openid_configuration()["jwks_uri"].endswith("/openid/v1/jwks")


def test_signing_key_is_kept_private(tmp_path):
    path = tmp_path / "sa.key"
    k1 = load_or_create_key(str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(str(path)).private_numbers() == k1.private_numbers()


def test_static_tokens_find_only_exact_tokens(tmp_path):
    f = tmp_path / "tokens.csv"
    f.write_text('abc123,alice,uid-a,"devs,ops"\nzzz,bob,uid-b\n')
    tokens = StaticTokens.load(str(f))
    alice = tokens.lookup("abc123")
    assert alice is not None and (alice.name, alice.uid, alice.groups) == ("alice", "uid-a", ["devs", "ops"])
    assert tokens.lookup("abc12") is None and tokens.lookup("abc1234") is None and tokens.lookup("") is None


def test_old_token_file_loses_system_masters(tmp_path):
    pki = PKI(str(tmp_path))
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "tokens.csv").write_text('secret-tok,kubelite-node,kubelite-node,"system:nodes,system:masters"\n')
    pki.ensure()
    user = StaticTokens.load(pki.token_file).lookup("secret-tok")
    assert user is not None and "system:masters" not in user.groups and BOOTSTRAP_GROUP in user.groups
    assert pki.node_token() == "secret-tok"
