"""apiserver's configuration: the shared TOML file, its own ``[apiserver]`` section.

The file format, the ``[database]`` and ``[log]`` sections and the error
messages are projectord's (:mod:`projectord.config`); projectord's own sections
are skipped here as ``[apiserver]`` is skipped there. apiserver reads no broker
settings: it has no broker connection.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from projectord.config import (
    CONFIG_ENV,
    SCHEMA,
    ConfigError,
    Key,
    metrics_bind_problem,
    parse_bind,
    read_sections,
    validate_key,
)

ROLES = ("viewer", "operator", "admin")
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _bind(value: str) -> str | None:
    try:
        parse_bind(value)
    except ValueError:
        return "HOST:PORT, e.g. '127.0.0.1:8080' or '[::1]:8080'"
    return None


def _entries(value: dict, what: str, fields: dict[str, str]) -> str | None:
    """Check a table of named entries; each a table with exactly ``fields``."""
    for name, entry in value.items():
        if not _ACCOUNT_NAME.fullmatch(name):
            return f"{what} names of letters, digits and _.@- (got {name!r})"
        if not isinstance(entry, dict) or set(entry) != set(fields):
            keys = ", ".join(fields)
            return f"{what} '{name}' as a table with exactly the keys {keys}"
        for key, rule in fields.items():
            if rule == "role" and entry[key] not in ROLES:
                return f"{what} '{name}': role one of {', '.join(ROLES)}"
            if rule == "argon2id" and not str(entry[key]).startswith("$argon2id$"):
                return f"{what} '{name}': an argon2id hash from 'apiserver hash-password'"
            if rule == "sha256" and not _SHA256_HEX.fullmatch(str(entry[key])):
                return f"{what} '{name}': 64 lowercase hex digits from 'apiserver new-token'"
    return None


def _accounts(value: dict) -> str | None:
    return _entries(value, "account", {"password_hash": "argon2id", "role": "role"})


def _tokens(value: dict) -> str | None:
    return _entries(value, "token", {"sha256": "sha256", "role": "role"})


API_SECTION: tuple[Key, ...] = (
    Key("bind", str, "127.0.0.1:8080", "Address apiserver listens on.", check=_bind),
    Key(
        "auth_disabled",
        bool,
        False,
        "Serve every request as admin without login; refused unless bound to loopback.",
    ),
    Key(
        "session_secret",
        str,
        "",
        "Key signing session cookies (env KANADE_API_SESSION_SECRET); empty: a random "
        "key per start, so a restart logs everyone out.",
        secret=True,
    ),
    Key("session_max_age_s", int, 43200, "Lifetime of a login session.", 60, 2592000),
    Key(
        "cookie_secure",
        bool,
        False,
        "Mark the session cookie Secure (set it when serving over HTTPS).",
    ),
    Key(
        "stale_after_s",
        float,
        300.0,
        "/api/health/ready fails when the projection is older than this.",
        1,
        86400,
    ),
    Key(
        "workers",
        int,
        1,
        "Processes serving requests on the one address; more than one uses more cores.",
        1,
        64,
    ),
    Key(
        "db_connections",
        int,
        8,
        "Read connections (and threads) per worker for queries that overrun db_inline_ms.",
        1,
        64,
    ),
    Key(
        "db_inline_ms",
        int,
        20,
        "How long a query may run on the worker's event-loop thread before it is "
        "interrupted and run again on a thread; 0: every query on a thread.",
        0,
        1000,
    ),
    Key(
        "proxy_hops",
        int,
        0,
        "Reverse proxies in front of apiserver whose X-Forwarded-For (and -Proto) is "
        "trusted, so login throttling sees the client's address; 0: headers ignored.",
        0,
        5,
    ),
    Key(
        "metrics_bind",
        str,
        "",
        "Serve Prometheus request metrics of all workers on this HOST:PORT, apart from the "
        "API (no authentication: keep it on loopback); empty: off.",
        check=metrics_bind_problem,
    ),
    Key(
        "accounts",
        dict,
        {},
        "Dashboard users: [apiserver.accounts.NAME] with password_hash and role.",
        check=_accounts,
    ),
    Key(
        "tokens",
        dict,
        {},
        "Service tokens: [apiserver.tokens.NAME] with sha256 and role.",
        check=_tokens,
    ),
)

API_SCHEMA: dict[str, tuple[Key, ...]] = {
    "database": SCHEMA["database"],
    "log": SCHEMA["log"],
    "apiserver": API_SECTION,
}
# projectord's sections; apiserver does not read them.
FOREIGN = tuple(s for s in SCHEMA if s not in API_SCHEMA)
API_ENV_OVERRIDES = {
    "KANADE_DB": ("database", "path"),
    "KANADE_API_SESSION_SECRET": ("apiserver", "session_secret"),
}


@dataclass(frozen=True)
class ApiSettings:
    """Validated apiserver configuration."""

    values: Mapping[str, Mapping[str, Any]]
    source: str = "defaults"
    env_used: tuple[str, ...] = field(default_factory=tuple)

    def section(self, name: str) -> Mapping[str, Any]:
        return self.values[name]

    @property
    def api(self) -> Mapping[str, Any]:
        return self.values["apiserver"]

    @property
    def db_path(self) -> Path:
        return Path(self.values["database"]["path"]).expanduser()

    def replace(self, section: str, **changes: Any) -> ApiSettings:
        """A copy with keys of one section changed, validated like the file's."""
        values = {k: dict(v) for k, v in self.values.items()}
        for name, value in changes.items():
            key = next(k for k in API_SCHEMA[section] if k.name == name)
            values[section][name] = validate_key(key, value, f"--{name.replace('_', '-')}")
        return _checked(ApiSettings(values, self.source, self.env_used))


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked(settings: ApiSettings) -> ApiSettings:
    host, _ = parse_bind(settings.api["bind"])
    metrics = settings.api["metrics_bind"]
    if metrics and parse_bind(metrics) == parse_bind(settings.api["bind"]):
        raise ConfigError(
            f"apiserver.metrics_bind: expected an address other than apiserver.bind, "
            f"got {metrics!r}"
        )
    if settings.api["auth_disabled"] and not is_loopback(host):
        raise ConfigError(
            f"apiserver.auth_disabled: allowed only when bound to loopback, "
            f"but apiserver.bind is {settings.api['bind']!r}"
        )
    return settings


def load_api_settings(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> ApiSettings:
    """Load apiserver's configuration; ConfigError names the key and what was expected."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    values, source, used = read_sections(path, env, API_SCHEMA, FOREIGN, API_ENV_OVERRIDES)
    return _checked(ApiSettings(values, source, used))
