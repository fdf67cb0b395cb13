"""Configuration: one TOML file, environment overrides for the broker and secrets.

Every key is declared once in :data:`SCHEMA` with its type, default, bounds and
help text; loading checks the file against it and names the offending key on any
mistake. The schema is also what a generated configuration reference reads.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CONFIG_ENV = "KANADE_CONFIG"


class ConfigError(Exception):
    """The configuration is unusable; the message names the key and what was expected."""


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default and the rule its value must meet."""

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    secret: bool = False

    def expected(self) -> str:
        """A human description of an acceptable value, for error messages."""
        noun = {
            int: "an integer",
            float: "a number",
            str: "a string",
            bool: "true or false",
            dict: "a table",
        }
        desc = noun[self.kind]
        if self.choices:
            desc = "one of " + ", ".join(repr(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            desc += f" from {_number(self.minimum)} to {_number(self.maximum)}"
        elif self.minimum is not None:
            desc += f" of at least {_number(self.minimum)}"
        return desc


def _number(value: float) -> str:
    # 2592000, not 2.592e+06: bounds are read by people choosing a value.
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _nats_url(value: str) -> str | None:
    for part in value.split(","):
        url = urlparse(part.strip())
        if url.scheme not in ("nats", "tls", "ws", "wss") or not url.hostname:
            return (
                "a nats:// (or tls://, ws://, wss://) URL with a host, comma-separated for several"
            )
    return None


def parse_bind(value: str) -> tuple[str, int]:
    """``"host:port"`` (IPv6 in brackets) as (host, port); ValueError when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(value)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def metrics_bind_problem(value: str) -> str | None:
    """The check of a ``metrics_bind`` key: empty (metrics off) or ``HOST:PORT``."""
    if value == "":
        return None
    try:
        parse_bind(value)
    except ValueError:
        return "HOST:PORT, e.g. '127.0.0.1:9464', or \"\" to turn metrics off"
    return None


SCHEMA: dict[str, tuple[Key, ...]] = {
    "nats": (
        Key(
            "url", str, "nats://127.0.0.1:4222", "Broker URL(s), comma-separated.", check=_nats_url
        ),
        Key("token", str, "", "Auth token (env KANADE_NATS_TOKEN).", secret=True),
        Key("user", str, "", "User name (env KANADE_NATS_USER)."),
        Key("password", str, "", "Password (env KANADE_NATS_PASSWORD).", secret=True),
        Key("creds", str, "", "Path to a .creds file (env KANADE_NATS_CREDS)."),
        Key("connect_timeout_s", float, 5.0, "Timeout of one connect attempt.", 0.1, 300),
    ),
    "database": (
        Key("path", str, "var/backend.db", "SQLite database file (env KANADE_DB)."),
        Key("busy_timeout_ms", int, 30000, "How long a write waits for a lock.", 0, 600000),
    ),
    "log": (
        Key(
            "format",
            str,
            "auto",
            "json (systemd), console (TTY) or auto (console on a TTY, else json).",
            choices=("auto", "json", "console"),
        ),
        Key(
            "level",
            str,
            "info",
            "Minimum level logged.",
            choices=("debug", "info", "warning", "error"),
        ),
    ),
    "projectord": (
        Key("batch_size", int, 1000, "Messages fetched and committed per transaction.", 1, 10000),
        Key("fetch_wait_ms", int, 1000, "How long an idle fetch waits for messages.", 10, 60000),
        Key("max_ack_pending", int, 20000, "Consumer max_ack_pending.", 1, 1000000),
        Key("flush_interval_ms", int, 1000, "Core-NATS micro-batch flush interval.", 10, 60000),
        Key("flush_max", int, 1000, "Core-NATS micro-batch size that forces a flush.", 1, 100000),
        Key("retry_max_backoff_s", float, 10.0, "Cap on the retry backoff.", 0.01, 600),
        Key("stop_timeout_s", float, 8.0, "Graceful stop budget before exit.", 0.5, 300),
        Key("reject_payload_bytes", int, 65536, "Raw bytes kept per reject.", 64, 16777216),
        Key(
            "kv_resync_s", float, 300.0, "Reopen and reconcile each KV mirror this often.", 5, 86400
        ),
        Key("status_interval_s", float, 5.0, "Stream and consumer snapshot interval.", 0.5, 3600),
        Key(
            "metrics_bind",
            str,
            "",
            "Serve Prometheus metrics on this HOST:PORT (no authentication: keep it on "
            "loopback); empty: off.",
            check=metrics_bind_problem,
        ),
    ),
    "scheduler": (
        Key("enabled", bool, True, "Fire schedules from KV (only the DB lock holder runs)."),
        Key(
            "signing_key_file",
            str,
            "",
            "Ed25519 private key (PEM) that signs every Command; empty: unsigned.",
        ),
        Key("signing_kid", str, "", "Key id sent with each signature (Kanade-Sig-Kid)."),
        Key(
            "catch_up_grace_s",
            int,
            0,
            "Catch up a calendar fire missed while down this late, beyond starting_deadline.",
            0,
            86400,
        ),
    ),
    "housekeeping": (
        Key("enabled", bool, True, "Run the cleanup tick (watchdog, expiry, retention)."),
        Key("interval_s", float, 300.0, "Time between cleanup ticks (first at start).", 1, 86400),
        Key(
            "pending_expiry_s",
            int,
            3600,
            "A pending execution older than this expires.",
            60,
            2592000,
        ),
        Key(
            "reap_fallback_s",
            int,
            86400,
            "Reap an in-flight run without a deadline after.",
            60,
            2592000,
        ),
        Key("offline_after_s", int, 120, "Heartbeat age that makes an agent offline.", 10, 86400),
        Key("delete_batch_rows", int, 10000, "Rows per retention delete transaction.", 100, 10**6),
        Key(
            "results_days",
            int,
            90,
            "Keep execution_results (by recorded_at); 0 = forever.",
            0,
            36500,
        ),
        Key(
            "executions_days", int, 90, "Keep executions (by initiated_at); 0 = forever.", 0, 36500
        ),
        Key("audit_days", int, 365, "Keep audit_log (by occurred_at); 0 = forever.", 0, 36500),
        Key("obs_events_days", int, 90, "Keep obs_events (by at); 0 = forever.", 0, 36500),
        Key("host_perf_days", int, 30, "Keep host_perf_samples (by at); 0 = forever.", 0, 36500),
        Key(
            "process_perf_days", int, 7, "Keep process_perf_samples (by at); 0 = forever.", 0, 36500
        ),
        Key(
            "schedule_fires_days",
            int,
            90,
            "Keep schedule_fires (by decided_at); 0 = forever.",
            0,
            36500,
        ),
    ),
}

# Sections owned by another process sharing the file; projectord does not read them.
FOREIGN_SECTIONS = ("apiserver",)

ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "KANADE_NATS_URL": ("nats", "url"),
    "KANADE_NATS_TOKEN": ("nats", "token"),
    "KANADE_NATS_USER": ("nats", "user"),
    "KANADE_NATS_PASSWORD": ("nats", "password"),
    "KANADE_NATS_CREDS": ("nats", "creds"),
    "KANADE_DB": ("database", "path"),
}


@dataclass(frozen=True)
class Settings:
    """Validated configuration; ``section(name)`` gives one table as a dict."""

    values: Mapping[str, Mapping[str, Any]]
    source: str = "defaults"
    env_used: tuple[str, ...] = field(default_factory=tuple)

    def section(self, name: str) -> Mapping[str, Any]:
        return self.values[name]

    @property
    def db_path(self) -> Path:
        return Path(self.values["database"]["path"]).expanduser()

    def with_db(self, path: str) -> Settings:
        """A copy with the database file replaced (the ``--db`` option)."""
        values = {k: dict(v) for k, v in self.values.items()}
        values["database"]["path"] = validate_key(_key("database", "path"), path, "--db")
        return Settings(values, self.source, self.env_used)


def _key(section: str, name: str) -> Key:
    return next(k for k in SCHEMA[section] if k.name == name)


def validate_key(key: Key, value: Any, where: str) -> Any:
    """Return ``value`` coerced to the key's type, or raise ConfigError naming ``where``.

    The offending value is quoted in the message, except for secrets.
    """
    try:
        return _check(key, value, where)
    except ConfigError as exc:
        if key.secret:
            message = str(exc).rsplit(", got ", 1)[0] + ", got something else (value not shown)"
            raise ConfigError(message) from None
        raise


def _check(key: Key, value: Any, where: str) -> Any:
    ok = isinstance(value, key.kind) and not (key.kind is not bool and isinstance(value, bool))
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{where}: expected {key.expected()}, got {value!r}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"{where}: expected {key.expected()}, got {value!r}")
    if (key.minimum is not None and value < key.minimum) or (
        key.maximum is not None and value > key.maximum
    ):
        raise ConfigError(f"{where}: expected {key.expected()}, got {value!r}")
    if key.kind is str and key.name == "path" and not value.strip():
        raise ConfigError(f"{where}: expected a file path, got an empty string")
    if key.check is not None and (problem := key.check(value)) is not None:
        raise ConfigError(f"{where}: expected {problem}, got {value!r}")
    return value


def _from_env(key: Key, raw: str, var: str) -> Any:
    if key.kind is str:
        return validate_key(key, raw, f"environment variable {var}")
    try:
        parsed: Any = key.kind(raw)
    except ValueError:
        expected = key.expected()
        raise ConfigError(f"environment variable {var}: expected {expected}, got {raw!r}") from None
    return validate_key(key, parsed, f"environment variable {var}")


def read_sections(
    path: str | Path | None,
    env: Mapping[str, str],
    schema: Mapping[str, tuple[Key, ...]],
    foreign: tuple[str, ...],
    overrides: Mapping[str, tuple[str, str]],
) -> tuple[dict[str, dict[str, Any]], str, tuple[str, ...]]:
    """Read and check the TOML file against ``schema``; apply ``overrides`` from env.

    Sections in ``foreign`` belong to the other process sharing the file and are
    not read. Returns (values per section, source, environment variables used).
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {source}: not found") from None
        except IsADirectoryError:
            raise ConfigError(
                f"config file {source}: is a directory, expected a TOML file"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source}: not valid TOML: {exc}") from None

    for section, items in raw.items():
        if section in foreign:
            continue
        if section not in schema:
            known = ", ".join(f"[{s}]" for s in (*schema, *foreign))
            raise ConfigError(f"{source}: unknown section [{section}]; expected one of {known}")
        if not isinstance(items, dict):
            raise ConfigError(f"{source}: key '{section}' must be a table [{section}]")
        names = {k.name for k in schema[section]}
        for name in items:
            if name not in names:
                raise ConfigError(
                    f"{source}: unknown key '{section}.{name}'; "
                    f"expected one of: {', '.join(sorted(names))}"
                )
    values: dict[str, dict[str, Any]] = {}
    for section, keys in schema.items():
        given = raw.get(section, {})
        values[section] = {
            k.name: validate_key(k, given[k.name], f"config key '{section}.{k.name}'")
            if k.name in given
            else k.default
            for k in keys
        }

    used = []
    for var, (section, name) in overrides.items():
        if var in env and env[var] != "":
            key = next(k for k in schema[section] if k.name == name)
            values[section][name] = _from_env(key, env[var], var)
            used.append(var)
    return values, source, tuple(used)


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate projectord's configuration.

    ``path`` (or ``$KANADE_CONFIG``) names a TOML file; without either, defaults
    apply. Environment overrides win over the file. Raises ConfigError naming the
    key and what was expected.
    """
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    values, source, used = read_sections(path, env, SCHEMA, FOREIGN_SECTIONS, ENV_OVERRIDES)

    nats = values["nats"]
    if bool(nats["user"]) != bool(nats["password"]):
        raise ConfigError("nats.user and nats.password: set both or neither")
    methods = [m for m in ("token", "user", "creds") if nats[m]]
    if len(methods) > 1:
        raise ConfigError(
            f"nats: choose one authentication method, got {' and '.join(methods)} "
            "(token, user/password or creds)"
        )
    if nats["creds"] and not Path(nats["creds"]).expanduser().is_file():
        raise ConfigError(f"nats.creds: file {nats['creds']!r} does not exist")
    _check_signing(values["scheduler"])
    return Settings(values, source, used)


def _check_signing(scheduler: Mapping[str, Any]) -> None:
    """A half-configured or unreadable signing key is a start-up error (wire-contract 6.8.1)."""
    from .scheduler.signing import SigningKeyError, signer_from_options

    try:
        signer_from_options(scheduler["signing_key_file"], scheduler["signing_kid"])
    except SigningKeyError as exc:
        raise ConfigError(f"scheduler.signing_key_file: {exc}") from None


def _mask_url_credentials(value: str) -> str:
    """``nats://user:pw@host`` and ``nats://token@host`` with the credentials masked."""
    parts = []
    for part in value.split(","):
        url = urlparse(part.strip())
        if "@" in url.netloc:
            url = url._replace(netloc="***@" + url.netloc.rsplit("@", 1)[1])
        parts.append(url.geturl())
    return ",".join(parts)


def redacted(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings with every secret masked, safe to log."""
    out: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        out[section] = {
            k.name: ("***" if k.secret and settings.values[section][k.name] else v)
            for k in keys
            for v in [settings.values[section][k.name]]
        }
    out["nats"]["url"] = _mask_url_credentials(out["nats"]["url"])
    return out
