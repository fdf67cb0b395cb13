"""Who a request comes from: a session cookie, a service token, or auth disabled."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from .sessions import COOKIE, SessionCodec


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str
    via: str  # "session", "token" or "disabled"


def token_sha256(token: str) -> str:
    """How a service token is stored in the config: its SHA-256, hex.

    Tokens are long random strings, so a fast hash is enough; it keeps a
    per-request check cheap where an argon2 verify would cost ~50 ms.
    """
    return hashlib.sha256(token.encode()).hexdigest()


class Authenticator:
    """Resolves the caller of a request from the configured accounts and tokens."""

    def __init__(self, api: Mapping[str, Any], sessions: SessionCodec) -> None:
        self.disabled = bool(api["auth_disabled"])
        self.accounts: Mapping[str, Mapping[str, str]] = api["accounts"]
        self.tokens: Mapping[str, Mapping[str, str]] = api["tokens"]
        self.sessions = sessions

    def identify(self, conn: HTTPConnection) -> Principal | None:
        """The caller, or None when the request carries no valid credential."""
        if self.disabled:
            return Principal("anonymous", "admin", "disabled")
        header = conn.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self._token(token.strip())
        user = self.sessions.user(conn.cookies.get(COOKIE))
        account = self.accounts.get(user) if user else None
        if user is None or account is None:
            return None
        return Principal(user, account["role"], "session")

    def _token(self, token: str) -> Principal | None:
        digest = token_sha256(token)
        found = None
        for name, entry in self.tokens.items():  # compare all, in constant time each
            if hmac.compare_digest(digest, entry["sha256"]):
                found = Principal(name, entry["role"], "token")
        return found
