"""The dashboard's session cookie: signed, expiring, HttpOnly, SameSite=Strict.

The cookie holds only the user name and is signed with ``session_secret``
(itsdangerous, HMAC-SHA1 over a timestamped payload). The role is looked up in
the configuration on every request, so removing an account or lowering its role
takes effect at once, not when the cookie expires.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

COOKIE = "kanade_session"
_SALT = "kanade-dashboard-session"


class SessionCodec:
    """Signs and checks session cookies."""

    def __init__(self, secret: str, max_age_s: int, secure: bool) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age_s = max_age_s
        self.secure = secure

    def user(self, cookie: str | None) -> str | None:
        """The user name in a valid, unexpired cookie, else None."""
        if not cookie:
            return None
        try:
            data = self.serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # also covers expiry (SignatureExpired)
            return None
        return data.get("u") if isinstance(data, dict) else None

    def set(self, response: Response, user: str) -> None:
        response.set_cookie(
            COOKIE,
            self.serializer.dumps({"u": user}),
            max_age=self.max_age_s,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            COOKIE, path="/", secure=self.secure, httponly=True, samesite="strict"
        )
