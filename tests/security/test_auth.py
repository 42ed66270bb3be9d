"""Authentication: API keys hashed at rest, Fence-style JWTs against a local JWKS, roles.

Every bad token is refused with 401, a clear message and `WWW-Authenticate: Bearer
error="invalid_token"`, never a traceback and never the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hub.api import create_app
from hub.cli import app as cli
from hub.config import ConfigError, load_config
from hub.security.apikeys import hash_key, new_key
from hub.security.auth import Authenticator, AuthError
from hub.security.auth_settings import AuthSettings, JwtSettings
from hub.security.identity import ANONYMOUS, Role, caller_of
from tests.security.tokens import (
    AUDIENCE,
    ISSUER,
    KID,
    fence_claims,
    rsa_key,
    sign,
    unsigned,
    write_jwks,
)

READER_KEY = "ihk_reader-key-for-tests-0123456789abcdefghijklmnop"
ADMIN_KEY = "ihk_admin-key-for-tests-0123456789abcdefghijklmnopq"
RESOURCES = {
    "midrc": ["phs000178"],  # the token reads phs000178
    "other": ["phs000999"],  # listed, but with "create" only: not a read grant
    "ct": ["/programs/midrc/projects/CT"],
    "sibling": ["/programs/midrc-archive"],
    "open": [],
}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory, key: rsa.RSAPrivateKey) -> Path:
    return write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json", (KID, key))


def settings(jwks: Path, **jwt_changes: Any) -> AuthSettings:
    return AuthSettings(
        api_keys={
            "reader-bot": {"hash": hash_key(READER_KEY), "role": "reader", "sources": ["midrc"]},
            "ops": {"hash": hash_key(ADMIN_KEY), "role": "admin"},
        },
        jwt=JwtSettings(
            issuer=ISSUER,
            audience=AUDIENCE,
            jwks_file=jwks,
            admin_claim="context.user.is_admin",
            grants_claims=["context.user.projects", "authz"],
            **jwt_changes,
        ),
    )


@pytest.fixture(scope="module")
def auth(jwks: Path) -> Authenticator:
    return Authenticator(settings(jwks), lambda: RESOURCES)


def bearer(token: str) -> str:
    return f"Bearer {token}"


# --- API keys --------------------------------------------------------------------------


def test_no_header_is_anonymous(auth: Authenticator) -> None:
    assert auth.authenticate(None) is ANONYMOUS


def test_api_keys_give_their_role_and_sources(auth: Authenticator) -> None:
    reader = auth.authenticate(bearer(READER_KEY))
    assert (reader.identity, reader.role, reader.authorized_sources) == (
        "key:reader-bot",
        Role.READER,
        frozenset({"midrc"}),
    )
    admin = auth.authenticate(f"bearer   {ADMIN_KEY} ")
    assert (admin.identity, admin.role) == ("key:ops", Role.ADMIN)


@pytest.mark.parametrize(
    "header",
    [bearer(READER_KEY[:-1] + "X"), bearer("ihk_" + "a" * 43), bearer(hash_key(READER_KEY))],
)
def test_wrong_api_key_is_refused(auth: Authenticator, header: str) -> None:
    with pytest.raises(AuthError, match="unknown or revoked API key"):
        auth.authenticate(header)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", READER_KEY])
def test_malformed_header_is_an_invalid_request(auth: Authenticator, header: str) -> None:
    with pytest.raises(AuthError, match="Authorization: Bearer") as caught:
        auth.authenticate(header)
    assert caught.value.code == "invalid_request"


def test_a_hub_without_auth_refuses_tokens_rather_than_ignoring_them() -> None:
    with pytest.raises(AuthError, match="no \\[auth\\] is configured"):
        Authenticator(AuthSettings()).authenticate(bearer(READER_KEY))


def _config(tmp_path: Path, auth_toml: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'[hub]\ndata_dir = "{tmp_path / "data"}"\n\n{auth_toml}')
    return path


def test_new_key_prints_the_key_once_and_config_holds_only_its_hash(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["auth", "new-key", "ci-bot", "--role", "admin"])
    assert result.exit_code == 0, result.output
    key = re.search(r"ihk_[A-Za-z0-9_-]{43}", result.output)
    assert key is not None
    table = result.output[result.output.index("[auth.api_keys.ci-bot]") :].split("\n\n")[0]
    assert key.group() not in table and hash_key(key.group()) in table
    config = load_config(_config(tmp_path, table))
    caller = Authenticator(config.auth).authenticate(bearer(key.group()))
    assert (caller.identity, caller.role) == ("key:ci-bot", Role.ADMIN)
    assert new_key().key != new_key().key


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (f'hash = "{READER_KEY}"\nrole = "reader"', r"auth\.api_keys\.ci\.hash: .*plaintext key"),
        ('hash = "sha256:abc"', r"auth\.api_keys\.ci\.hash: .*64 hexadecimal"),
        (f'hash = "{hash_key(READER_KEY)}"\nkey = "{READER_KEY}"', r"auth\.api_keys\.ci\.key"),
        (f'hash = "{hash_key(READER_KEY)}"\nrole = "root"', r"auth\.api_keys\.ci\.role"),
    ],
)
def test_bad_key_config_names_the_key(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(_config(tmp_path, f"[auth.api_keys.ci]\n{table}\n"))
    assert READER_KEY not in str(caught.value)  # a pasted key is never echoed


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('audience = "hub"\njwks_file = "k.json"', r"auth\.jwt\.issuer: Field required"),
        (
            'issuer = "i"\naudience = "hub"\njwks_file = "k.json"\nalgorithms = ["HS256"]',
            r"auth\.jwt\.algorithms\.0: Input should be 'RS256'",
        ),
        ('issuer = "i"\naudience = []\njwks_file = "k.json"', r"auth\.jwt\.audience: List should"),
    ],
)
def test_bad_jwt_config_names_the_key(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, f"[auth.jwt]\n{table}\n"))


def test_missing_jwks_file_is_a_config_error(tmp_path: Path) -> None:
    broken = JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=tmp_path / "absent.json")
    with pytest.raises(ConfigError, match=r"auth\.jwt\.jwks_file: cannot read"):
        Authenticator(AuthSettings(jwt=broken))


# --- JWTs ------------------------------------------------------------------------------


def test_fence_token_gives_a_reader_with_its_read_grants(
    auth: Authenticator, key: rsa.RSAPrivateKey
) -> None:
    caller = auth.authenticate(bearer(sign(fence_claims(), key)))
    assert caller.identity == "user:alice@example.org"
    assert caller.role is Role.READER
    assert caller.authorized_sources == {"midrc"}  # phs000999 holds "create" only


def test_admin_claim_and_resource_paths(auth: Authenticator, key: rsa.RSAPrivateKey) -> None:
    claims = fence_claims(authz=["/programs/midrc"])
    claims["context"]["user"]["is_admin"] = True
    caller = auth.authenticate(bearer(sign(claims, key)))
    assert caller.role is Role.ADMIN
    # a program path grants the projects below it, never a sibling sharing its prefix
    assert caller.authorized_sources == {"midrc", "ct"}


def test_fence_keys_endpoint_format_is_accepted(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "fence-keys.json"
    path.write_text(json.dumps({"keys": [[KID, pem.decode()]]}))
    caller = Authenticator(settings(path)).authenticate(bearer(sign(fence_claims(), key)))
    assert caller.role is Role.READER


@pytest.fixture(scope="module")
def bad_tokens(key: rsa.RSAPrivateKey) -> dict[str, tuple[str, str]]:
    other = rsa_key()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = fence_claims()["iat"]
    no_exp = fence_claims()
    del no_exp["exp"]
    return {
        "expired": (sign(fence_claims(exp=now - 3600, iat=now - 7200), key), "has expired"),
        "wrong issuer": (sign(fence_claims(iss="https://evil.example/user"), key), "issuer"),
        "wrong audience": (sign(fence_claims(aud=["openid", "user", "x"]), key), "audience"),
        "bad signature": (sign(fence_claims(), other), "signature does not verify"),
        "unknown kid": (sign(fence_claims(), key, kid="key-99"), "does not know (kid)"),
        "alg none": (unsigned(fence_claims()), "algorithm is not accepted"),
        "hs256 key confusion": (_hs256(fence_claims(), public_pem), "algorithm is not accepted"),
        "refresh token": (sign(fence_claims(pur="refresh"), key), "not an access token"),
        "no exp": (sign(no_exp, key), "lacks the required 'exp' claim"),
        "not yet valid": (sign(fence_claims(nbf=now + 3600), key), "not valid yet"),
        "tampered claims": (_tamper(sign(fence_claims(), key)), "signature does not verify"),
        "garbage": ("abc.def.ghi", "not a well-formed JWT"),
    }


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """HMAC-signed with the PUBLIC key as secret: the classic key-confusion forgery (PyJWT
    itself refuses to make one, so it is put together by hand)."""
    encode = jwt.utils.base64url_encode
    header = encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    body = encode(json.dumps(claims).encode())
    signature = hmac.new(secret, header + b"." + body, hashlib.sha256).digest()
    return b".".join([header, body, encode(signature)]).decode()


def _tamper(token: str) -> str:
    """The same signature over claims that now say the user is an admin."""
    header, _, signature = token.split(".")
    claims = fence_claims()
    claims["context"]["user"]["is_admin"] = True
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{body}.{signature}"


CASES = [
    "expired", "wrong issuer", "wrong audience", "bad signature", "unknown kid", "alg none",
    "hs256 key confusion", "refresh token", "no exp", "not yet valid", "tampered claims",
    "garbage",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_jwt_is_refused_with_a_clear_message(
    auth: Authenticator, bad_tokens: dict[str, tuple[str, str]], case: str
) -> None:
    token, message = bad_tokens[case]
    with pytest.raises(AuthError, match=re.escape(message)) as caught:
        auth.authenticate(bearer(token))
    assert caught.value.code == "invalid_token"
    assert token not in str(caught.value)


# --- over HTTP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, jwks: Path) -> Iterator[TestClient]:
    from hub.config import HubConfig, HubSettings

    data_dir = tmp_path_factory.mktemp("auth-hub")
    config = HubConfig(hub=HubSettings(data_dir=data_dir), auth=settings(jwks))
    app = create_app(config)

    @app.get("/test/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        caller = caller_of(request)
        return {"identity": caller.identity, "role": caller.role.name}

    with TestClient(app) as client:
        yield client


def test_http_sets_the_caller_on_request_state(client: TestClient, key: rsa.RSAPrivateKey) -> None:
    assert client.get("/test/whoami").json() == {"identity": None, "role": "ANONYMOUS"}
    token = sign(fence_claims(), key)
    answer = client.get("/test/whoami", headers={"Authorization": bearer(token)})
    assert answer.json() == {"identity": "user:alice@example.org", "role": "READER"}


@pytest.mark.parametrize("case", ["expired", "bad signature", "alg none", "unknown kid"])
def test_http_answers_401_with_a_bearer_challenge(
    client: TestClient, bad_tokens: dict[str, tuple[str, str]], case: str
) -> None:
    token, message = bad_tokens[case]
    answer = client.post(
        "/graphql", json={"query": "{ sources { name } }"}, headers={"Authorization": bearer(token)}
    )
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="imaging-hub", error="invalid_token"')
    assert message in answer.json()["error"] and message in challenge
    assert token not in answer.text and "Traceback" not in answer.text


def test_http_malformed_header_is_invalid_request(client: TestClient) -> None:
    answer = client.get("/healthz", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert answer.status_code == 401
    assert 'error="invalid_request"' in answer.headers["WWW-Authenticate"]


MUTATION = 'mutation { removeSource(name: "nope") { message } }'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "admin role required to remove sources (an anonymous caller is anonymous)"),
        (bearer(READER_KEY), "admin role required to remove sources (key:reader-bot is reader)"),
        (bearer(ADMIN_KEY), "no source named 'nope'"),  # past the role check
    ],
)
def test_graphql_context_carries_the_caller(
    client: TestClient, header: str | None, expected: str
) -> None:
    headers = {"Authorization": header} if header else {}
    body = client.post("/graphql", json={"query": MUTATION}, headers=headers).json()
    assert body["errors"][0]["message"].startswith(expected), body
