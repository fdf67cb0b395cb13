"""The dev stack's configuration file and its generated dashboard login.

Written on the first start under the state folder and reused afterwards, so a
restart keeps the same login, and the file is the operator's to edit. The
password itself is kept next to it (mode 0600) only so it can be printed again;
the configuration holds just its argon2id hash.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from apiserver.auth.passwords import hash_password

CONFIG_NAME = "kanade.toml"
LOGIN_NAME = "dashboard-login.json"
USERNAME = "admin"


@dataclass(frozen=True)
class Login:
    username: str
    password: str | None  # None when the stored copy is gone


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(value)


def render_config(db_path: Path, username: str, password_hash: str, session_secret: str) -> str:
    """The dev stack's TOML: database, JSON logs (they go to files), one admin account."""
    return (
        "# The dev stack's configuration, written by `projectord dev` on its first start.\n"
        "# Edit freely; the broker URL and the HTTP address come from the command line.\n\n"
        "[database]\n"
        f"path = {_toml_string(str(db_path))}\n\n"
        "[log]\n"
        'format = "json"\n\n'
        "[apiserver]\n"
        f"session_secret = {_toml_string(session_secret)}\n\n"
        f"[apiserver.accounts.{username}]\n"
        f"password_hash = {_toml_string(password_hash)}\n"
        'role = "admin"\n'
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def ensure_config(state_dir: Path, db_path: Path) -> tuple[Path, Login]:
    """The stack's config file (written if absent) and the login to print."""
    config = state_dir / CONFIG_NAME
    stored = state_dir / LOGIN_NAME
    if config.exists():
        try:
            saved = json.loads(stored.read_text())
            return config, Login(saved["username"], saved["password"])
        except (OSError, ValueError, KeyError, TypeError):
            return config, Login(USERNAME, None)
    password = secrets.token_urlsafe(12)
    _write_private(stored, json.dumps({"username": USERNAME, "password": password}))
    text = render_config(db_path, USERNAME, hash_password(password), secrets.token_urlsafe(32))
    _write_private(config, text)
    return config, Login(USERNAME, password)
