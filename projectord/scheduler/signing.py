"""Optional Ed25519 signing of Command publishes (wire-contract 6.8.1).

With a key configured, every Command carries four headers computed over the
exact body bytes at send time (a delayed wave is signed when it is sent):
``Kanade-Sig`` (standard padded base64 signature), ``Kanade-Sig-Kid``,
``Kanade-Sig-Alg: ed25519`` and ``Kanade-Sig-At`` (milliseconds since the
epoch). The signed message is the 8-byte big-endian ``at_ms`` followed by the
body. Without a key there are no headers at all: agents class a partial set
as malformed.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..timestamps import epoch_millis, utc_now


class SigningKeyError(ValueError):
    """The configured key cannot be used; the message names the file."""


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from an unencrypted PEM (PKCS#8) file, as made by
    ``openssl genpkey -algorithm ed25519``."""
    file = Path(path).expanduser()
    try:
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except OSError as exc:
        raise SigningKeyError(f"{file}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{file}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{file}: expected an Ed25519 key, got {type(key).__name__}")
    return key


def signed_message(body: bytes, at_ms: int) -> bytes:
    """What is signed: the 8-byte big-endian signed ``at_ms``, then the body."""
    return struct.pack(">q", at_ms) + body


@dataclass(frozen=True)
class Signer:
    kid: str
    key: Ed25519PrivateKey

    def headers(self, body: bytes, at: datetime | None = None) -> dict[str, str]:
        at_ms = epoch_millis(at or utc_now())
        signature = self.key.sign(signed_message(body, at_ms))
        return {
            "Kanade-Sig": base64.b64encode(signature).decode(),
            "Kanade-Sig-Kid": self.kid,
            "Kanade-Sig-Alg": "ed25519",
            "Kanade-Sig-At": str(at_ms),
        }

    @property
    def identity(self) -> str:
        """``kid:fingerprint`` as shown to operators (SHA-256 of the raw public key, hex)."""
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return f"{self.kid}:{hashlib.sha256(raw).hexdigest()[:16]}"


def signer_from_options(key_file: str, kid: str) -> Signer | None:
    """The Signer configured by ``signing_key_file`` / ``signing_kid``; None when neither is set."""
    if not key_file and not kid:
        return None
    if not key_file or not kid:
        raise SigningKeyError(
            "scheduler.signing_key_file and scheduler.signing_kid: set both or neither"
        )
    return Signer(kid, load_private_key(key_file))
