"""A small OpenID Connect provider for tests: a real HTTP server on 127.0.0.1 in a thread, speaking the
protocol allauth speaks to Google, Okta or Keycloak (discovery, authorization code, token with an RS256
id_token, JWKS, userinfo). Its authorize step asks nobody: it redirects back at once with a code for
`provider.next_identity`, as if that person had just signed in there.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "openbench-test-client"
CLIENT_SECRET = "openbench-test-secret"
KEY_ID = "test-key-1"
PROVIDER_ID = "fake"  # our side's id for it: /oauth/oidc/fake/login/


@dataclass
class Grant:
    identity: dict[str, Any]
    client_id: str
    redirect_uri: str
    nonce: str | None


@dataclass
class FakeOIDCProvider:
    """State shared with the handler: who signs in next, the codes issued, the requests seen."""

    base_url: str = ""
    next_identity: dict[str, Any] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def identity(self, *, sub: str, email: str | None, email_verified: bool = True, name: str = "") -> None:
        """The person the next authorize request signs in as."""
        claims: dict[str, Any] = {"sub": sub, "name": name or sub}
        if email is not None:
            claims.update(email=email, email_verified=email_verified)
        self.next_identity = claims

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            "authorization_endpoint": f"{self.base_url}/authorize",
            "token_endpoint": f"{self.base_url}/token",
            "userinfo_endpoint": f"{self.base_url}/userinfo",
            "jwks_uri": f"{self.base_url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=KEY_ID, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {**grant.identity, "iss": self.base_url, "aud": grant.client_id, "iat": now, "exp": now + 300}
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KEY_ID})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        provider = self.server.provider
        url = urlsplit(self.path)
        provider.seen.append(f"GET {url.path}")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._json(200, provider.discovery())
        elif url.path == "/jwks":
            self._json(200, provider.jwks())
        elif url.path == "/authorize":
            if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code" or "state" not in query:
                self._json(400, {"error": "invalid_request"})
                return
            code = secrets.token_urlsafe(16)
            provider.grants[code] = Grant(
                dict(provider.next_identity), CLIENT_ID, query["redirect_uri"], query.get("nonce")
            )
            self.send_response(302)
            self.send_header(
                "Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            )
            self.end_headers()
        elif url.path == "/userinfo":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in provider.tokens:
                self._json(401, {"error": "invalid_token"})
                return
            self._json(200, provider.tokens[token])
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        provider = self.server.provider
        provider.seen.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.path != "/token":
            self._json(404, {"error": "not_found"})
            return
        grant = provider.grants.pop(form.get("code", ""), None)  # a code works once
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("redirect_uri") != grant.redirect_uri
        ):
            self._json(400, {"error": "invalid_grant"})
            return
        access_token = secrets.token_urlsafe(24)
        provider.tokens[access_token] = grant.identity
        self._json(
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": provider.id_token(grant),
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: FakeOIDCProvider


@contextmanager
def running_oidc_provider() -> Iterator[FakeOIDCProvider]:
    """Start the provider on a free port of 127.0.0.1; stop it on exit."""
    server = _Server(("127.0.0.1", 0), _Handler)
    provider = FakeOIDCProvider(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    server.provider = provider
    thread = threading.Thread(target=server.serve_forever, name="fake-oidc", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def oidc_settings(base_url: str) -> dict[str, Any]:
    """SOCIALACCOUNT_PROVIDERS as openbench/settings_oauth.py builds it from the OIDC_* variables."""
    app = {
        "provider_id": PROVIDER_ID,
        "name": "Fake SSO",
        "client_id": CLIENT_ID,
        "secret": CLIENT_SECRET,
        "settings": {"server_url": base_url},
    }
    return {"openid_connect": {"APPS": [app]}}
