"""Configuration loading: bad input exits 2 naming the key, precedence, redaction.

The CLI runs as a real subprocess (``python -m projectord``) in a scratch working
directory with every ``KANADE_*`` variable removed from its environment, so the
developer's own settings cannot leak into a case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from projectord.cli import _parser
from projectord.config import SCHEMA, ConfigError, load_settings, redacted

CLI_TIMEOUT_S = 20
# `run` with a configuration that is wrongly accepted would start the daemon and
# never exit; it is given this long before the case counts as failed.
RUN_TIMEOUT_S = 3
# Nothing listens here: a daemon started by mistake cannot touch anyone's broker.
DEAD_BROKER = "nats://127.0.0.1:1"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANADE_")}
    env.update(extra)
    return env


def run_cli(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "projectord", *args],
            cwd=cwd,
            env=clean_env(**(env or {})),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        pytest.fail(
            f"projectord {' '.join(args)} did not exit within {timeout}s "
            f"(configuration accepted or ignored?); stderr head:\n{stderr[:1500]}"
        )


def log_events(stderr: str) -> dict[str, dict]:
    """The JSON log lines of a run, keyed by event name."""
    events = {}
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            events[record["event"]] = record
    return events


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- bad configuration files -------------------------------------------------------------

# (case id, file text or None for "no such file", substrings stderr must hold).
# Finer variants of each mistake are checked in-process further down.
FILE_CASES = [
    (
        "unknown_key",
        '[nats]\nurll = "nats://127.0.0.1:4222"\n',
        ["nats.urll", "unknown key", "url"],
    ),
    (
        "unknown_section",
        '[natz]\nurl = "nats://127.0.0.1:4222"\n',
        ["[natz]", "unknown section", "[nats]", "[projectord]"],
    ),
    (
        "wrong_type",
        '[projectord]\nbatch_size = "x"\n',
        ["projectord.batch_size", "an integer", "'x'"],
    ),
    (
        "out_of_range",
        "[projectord]\nbatch_size = 0\n",
        ["projectord.batch_size", "from 1 to 10000", "got 0"],
    ),
    (
        "bad_choice",
        '[log]\nformat = "xml"\n',
        ["log.format", "'json'", "'console'", "'auto'", "'xml'"],
    ),
    ("invalid_toml", '[nats\nurl = "nats://x"\n', ["not valid TOML"]),
    ("missing_file", None, ["not found"]),
    (
        "bad_nats_url",
        '[nats]\nurl = "http://broker:4222"\n',
        ["nats.url", "nats://", "http://broker:4222"],
    ),
    (
        "user_without_password",
        '[nats]\nuser = "alice"\n',
        ["nats.user", "nats.password", "both"],
    ),
    (
        "two_auth_methods",
        '[nats]\ntoken = "t0k"\nuser = "alice"\npassword = "pw"\n',
        ["authentication method", "token", "user"],
    ),
    (
        "nonexistent_creds_file",
        '[nats]\ncreds = "/nonexistent/dir/agent.creds"\n',
        ["nats.creds", "/nonexistent/dir/agent.creds", "does not exist"],
    ),
]

# Where --config goes on the command line; the parser accepts both spellings.
FILE_FORMS = {
    "config_before_migrate": lambda f: ["--config", f, "migrate"],
    "migrate_then_config": lambda f: ["migrate", "--config", f],
}


def _config_file(tmp_path: Path, text: str | None) -> Path:
    path = tmp_path / "projectord.toml"
    if text is not None:
        write(path, text)
    return path


@pytest.mark.parametrize("form", FILE_FORMS)
@pytest.mark.parametrize(("case", "text", "needles"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_config_file_exits_2_naming_the_key(tmp_path, form, case, text, needles):
    path = _config_file(tmp_path, text)
    proc = run_cli(FILE_FORMS[form](str(path)), tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "projectord: configuration error:" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    if case in ("invalid_toml", "missing_file"):
        assert str(path) in proc.stderr
    # Nothing was migrated: no database appeared.
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("form", ["config_before_run", "run_then_config"])
def test_bad_config_file_with_run_exits_2(tmp_path, form):
    """`run` checks the configuration before it starts anything."""
    path = _config_file(tmp_path, "[projectord]\nbatch_size = 0\n")
    if form == "config_before_run":
        args = ["--config", str(path), "run"]
    else:
        args = ["run", "--config", str(path)]
    proc = run_cli(args, tmp_path, {"KANADE_NATS_URL": DEAD_BROKER}, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "projectord: configuration error:" in proc.stderr
    assert "projectord.batch_size" in proc.stderr
    assert "from 1 to 10000" in proc.stderr


def test_options_before_the_subcommand_are_kept():
    """The top-level --config/--db must survive the subcommand's own defaults."""
    parser = _parser()
    for command in ("run", "migrate"):
        args = parser.parse_args(["--config", "c.toml", "--db", "x.db", command])
        assert (args.command, args.config, args.db) == (command, "c.toml", "x.db")
        args = parser.parse_args([command, "--config", "c.toml", "--db", "x.db"])
        assert (args.command, args.config, args.db) == (command, "c.toml", "x.db")
    args = parser.parse_args(["--config", "c.toml"])
    assert (args.command, args.config) == (None, "c.toml")


# --- bad environment ---------------------------------------------------------------------

ENV_CASES = [
    (
        "url_scheme",
        {"KANADE_NATS_URL": "http://x"},
        ["KANADE_NATS_URL", "nats://", "'http://x'"],
    ),
    (
        "creds_missing",
        {"KANADE_NATS_CREDS": "/nonexistent/env.creds"},
        ["nats.creds", "/nonexistent/env.creds", "does not exist"],
    ),
    ("blank_db", {"KANADE_DB": "   "}, ["KANADE_DB", "file path"]),
    (
        "config_missing",
        {"KANADE_CONFIG": "/nonexistent/kanade.toml"},
        ["/nonexistent/kanade.toml", "not found"],
    ),
]


@pytest.mark.parametrize(("case", "env", "needles"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_bad_environment_exits_2_naming_the_variable(tmp_path, case, env, needles):
    proc = run_cli(["migrate"], tmp_path, env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "projectord: configuration error:" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    assert not (tmp_path / "var").exists()


def test_bad_environment_with_run_exits_2(tmp_path):
    proc = run_cli(["run"], tmp_path, {"KANADE_NATS_URL": "http://x"}, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "environment variable KANADE_NATS_URL" in proc.stderr


def test_kanade_config_env_names_the_bad_key(tmp_path):
    path = write(tmp_path / "env.toml", "[projectord]\nfetch_wait_ms = 5\n")
    proc = run_cli(["migrate"], tmp_path, {"KANADE_CONFIG": str(path)})
    assert proc.returncode == 2, proc.stderr
    assert "projectord.fetch_wait_ms" in proc.stderr
    assert "from 10 to 60000" in proc.stderr


# --- in-process loading: every error is a ConfigError naming the key -------------------


IN_PROCESS_CASES = [
    ('[nats]\nurll = "x"\n', {}, ["nats.urll"]),
    ("[projectord]\nbatch_size = 0\n", {}, ["projectord.batch_size", "from 1 to 10000"]),
    ("[projectord]\nbatch_size = true\n", {}, ["projectord.batch_size", "an integer"]),
    ("[projectord]\nbatch_size = 1.5\n", {}, ["projectord.batch_size", "an integer"]),
    ("[database]\nbusy_timeout_ms = 600001\n", {}, ["database.busy_timeout_ms", "600000"]),
    ('[log]\nlevel = "verbose"\n', {}, ["log.level", "'debug'", "'verbose'"]),
    ('[nats]\nconnect_timeout_s = "5"\n', {}, ["nats.connect_timeout_s", "a number"]),
    ("[nats]\nconnect_timeout_s = 0.05\n", {}, ["nats.connect_timeout_s", "from 0.1 to 300"]),
    ("[nats.tls]\nca = 'x'\n", {}, ["nats.tls", "unknown key"]),
    ('nats = "nats://h:4222"\n', {}, ["nats", "table"]),
    ("[database]\npath = ''\n", {}, ["database.path", "file path"]),
    ('[nats]\nurl = "nats://"\n', {}, ["nats.url", "with a host"]),
    ('[nats]\nurl = "nats://a:4222, ftp://b:4222"\n', {}, ["nats.url", "'nats://a:4222, ftp"]),
    ('[nats]\npassword = "pw"\n', {}, ["nats.user", "nats.password"]),
    ('[nats]\ntoken = "t"\n', {"KANADE_NATS_USER": "u", "KANADE_NATS_PASSWORD": "p"}, ["token"]),
    ("", {"KANADE_NATS_USER": "alice"}, ["nats.user", "nats.password"]),
    ("", {"KANADE_NATS_URL": "nats://"}, ["KANADE_NATS_URL", "with a host"]),
    (
        "",
        {"KANADE_NATS_TOKEN": "t", "KANADE_NATS_CREDS": __file__},
        ["authentication method", "token", "creds"],
    ),
]


@pytest.mark.parametrize(("text", "env", "needles"), IN_PROCESS_CASES)
def test_load_settings_raises_config_error_naming_key(tmp_path, text, env, needles):
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


# --- positive cases -----------------------------------------------------------------------


def _defaults() -> dict[str, dict]:
    return {s: {k.name: k.default for k in keys} for s, keys in SCHEMA.items()}


def test_defaults_without_a_file():
    settings = load_settings(None, env={})
    assert settings.source == "defaults"
    assert settings.env_used == ()
    assert {s: dict(v) for s, v in settings.values.items()} == _defaults()
    assert settings.section("nats")["url"] == "nats://127.0.0.1:4222"
    assert settings.section("projectord")["batch_size"] == 1000
    assert settings.db_path == Path("var/backend.db")


def test_file_values_are_read_and_int_accepted_for_float(tmp_path):
    path = write(
        tmp_path / "c.toml",
        '[nats]\nurl = "nats://a:4222,tls://b:4223"\nconnect_timeout_s = 7\n'
        "[projectord]\nbatch_size = 42\n"
        '[log]\nformat = "json"\nlevel = "debug"\n',
    )
    settings = load_settings(path, env={})
    assert settings.source == str(path)
    assert settings.section("nats")["url"] == "nats://a:4222,tls://b:4223"
    assert settings.section("nats")["connect_timeout_s"] == 7.0
    assert isinstance(settings.section("nats")["connect_timeout_s"], float)
    assert settings.section("projectord")["batch_size"] == 42
    assert settings.section("log") == {"format": "json", "level": "debug"}
    # untouched keys keep their defaults
    assert settings.section("projectord")["fetch_wait_ms"] == 1000


def test_kanade_config_env_is_used(tmp_path):
    path = write(tmp_path / "env.toml", "[projectord]\nbatch_size = 7\n")
    settings = load_settings(None, env={"KANADE_CONFIG": str(path)})
    assert settings.source == str(path)
    assert settings.section("projectord")["batch_size"] == 7
    # an explicit path wins over KANADE_CONFIG
    other = write(tmp_path / "other.toml", "[projectord]\nbatch_size = 9\n")
    assert (
        load_settings(other, env={"KANADE_CONFIG": str(path)}).section("projectord")["batch_size"]
        == 9
    )


def test_env_overrides_win_over_the_file(tmp_path):
    creds_file = write(tmp_path / "env.creds", "-----BEGIN NATS USER JWT-----\n")
    path = write(
        tmp_path / "c.toml",
        '[nats]\nurl = "nats://file:4222"\n[database]\npath = "file.db"\n',
    )
    cases = [
        ({"KANADE_NATS_URL": "nats://env:4222"}, "nats", "url", "nats://env:4222"),
        ({"KANADE_NATS_TOKEN": "env-token"}, "nats", "token", "env-token"),
        ({"KANADE_NATS_CREDS": str(creds_file)}, "nats", "creds", str(creds_file)),
        ({"KANADE_DB": "env.db"}, "database", "path", "env.db"),
    ]
    for env, section, key, expected in cases:
        settings = load_settings(path, env=env)
        assert settings.section(section)[key] == expected, env
        assert settings.env_used == tuple(env), env

    settings = load_settings(
        path, env={"KANADE_NATS_USER": "env-user", "KANADE_NATS_PASSWORD": "env-pw"}
    )
    assert settings.section("nats")["user"] == "env-user"
    assert settings.section("nats")["password"] == "env-pw"
    assert set(settings.env_used) == {"KANADE_NATS_USER", "KANADE_NATS_PASSWORD"}


def test_env_overrides_replace_file_secrets(tmp_path):
    path = write(
        tmp_path / "c.toml",
        '[nats]\ntoken = "file-token"\n[database]\npath = "file.db"\n',
    )
    settings = load_settings(path, env={"KANADE_NATS_TOKEN": "env-token", "KANADE_DB": "e.db"})
    assert settings.section("nats")["token"] == "env-token"
    assert settings.db_path == Path("e.db")
    user_file = write(tmp_path / "u.toml", '[nats]\nuser = "fu"\npassword = "fp"\n')
    settings = load_settings(user_file, env={"KANADE_NATS_PASSWORD": "ep"})
    assert (settings.section("nats")["user"], settings.section("nats")["password"]) == (
        "fu",
        "ep",
    )


def test_empty_env_value_does_not_override(tmp_path):
    path = write(tmp_path / "c.toml", '[nats]\nurl = "nats://file:4222"\n')
    settings = load_settings(path, env={"KANADE_NATS_URL": ""})
    assert settings.section("nats")["url"] == "nats://file:4222"
    assert settings.env_used == ()


def test_db_option_overrides_file_and_env(tmp_path):
    path = write(tmp_path / "c.toml", '[database]\npath = "file.db"\n')
    settings = load_settings(path, env={"KANADE_DB": "env.db"}).with_db("cli.db")
    assert settings.db_path == Path("cli.db")


def test_apiserver_section_is_tolerated(tmp_path):
    path = write(
        tmp_path / "c.toml",
        '[apiserver]\nlisten = "0.0.0.0:8080"\nsecret_key = "k"\n'
        '[apiserver.auth]\nmode = "password"\n'
        "[projectord]\nbatch_size = 3\n",
    )
    settings = load_settings(path, env={})
    assert settings.section("projectord")["batch_size"] == 3
    assert "apiserver" not in settings.values


def test_redacted_masks_secrets_only():
    settings = load_settings(
        None, env={"KANADE_NATS_USER": "alice", "KANADE_NATS_PASSWORD": "hunter2"}
    )
    out = redacted(settings)
    assert out["nats"]["password"] == "***"
    assert out["nats"]["user"] == "alice"
    assert out["nats"]["token"] == ""  # unset secrets show as unset
    assert out["nats"]["url"] == "nats://127.0.0.1:4222"
    assert "hunter2" not in json.dumps(out)
    assert settings.section("nats")["password"] == "hunter2"  # the settings are untouched

    out = redacted(load_settings(None, env={"KANADE_NATS_TOKEN": "s3cr3t"}))
    assert out["nats"]["token"] == "***"
    assert "s3cr3t" not in json.dumps(out)
    # every other value passes through unchanged
    assert out["projectord"] == _defaults()["projectord"]


def test_redacted_masks_credentials_inside_the_url():
    """nats://user:password@host and nats://token@host carry secrets too."""
    settings = load_settings(
        None, env={"KANADE_NATS_URL": "nats://alice:hunter2@broker:4222,nats://tok3n@b2:4222"}
    )
    url = redacted(settings)["nats"]["url"]
    assert "hunter2" not in url
    assert "tok3n" not in url
    assert "broker:4222" in url and "b2:4222" in url  # still says where it connects
    assert settings.section("nats")["url"].startswith("nats://alice:hunter2@")


# --- CLI positive cases -------------------------------------------------------------------


def test_cli_defaults_without_a_file(tmp_path):
    proc = run_cli(["migrate"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = log_events(proc.stderr)
    assert events["config_loaded"]["source"] == "defaults"
    assert events["config_loaded"]["config"]["database"]["path"] == "var/backend.db"
    assert (tmp_path / "var" / "backend.db").is_file()


def test_cli_kanade_config_env_is_used(tmp_path):
    path = write(
        tmp_path / "k.toml",
        '[apiserver]\nlisten = "127.0.0.1:8080"\n[database]\npath = "from-file.db"\n',
    )
    proc = run_cli(["migrate"], tmp_path, {"KANADE_CONFIG": str(path)})
    assert proc.returncode == 0, proc.stderr
    assert log_events(proc.stderr)["config_loaded"]["source"] == str(path)
    assert (tmp_path / "from-file.db").is_file()
    assert not (tmp_path / "var").exists()


def test_cli_kanade_db_wins_over_file(tmp_path):
    path = write(tmp_path / "k.toml", '[database]\npath = "from-file.db"\n')
    proc = run_cli(["migrate"], tmp_path, {"KANADE_CONFIG": str(path), "KANADE_DB": "env.db"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "env.db").is_file()
    assert not (tmp_path / "from-file.db").exists()
    assert log_events(proc.stderr)["config_loaded"]["env_overrides"] == ["KANADE_DB"]


@pytest.mark.parametrize(
    "form",
    [
        lambda f: ["--config", f, "migrate", "--db", "cli.db"],
        lambda f: ["migrate", "--config", f, "--db", "cli.db"],
    ],
    ids=["config_before_migrate", "migrate_then_options"],
)
def test_cli_db_option_overrides_file_and_env(tmp_path, form):
    path = write(tmp_path / "k.toml", '[database]\npath = "from-file.db"\n')
    proc = run_cli(form(str(path)), tmp_path, {"KANADE_DB": "env.db"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cli.db").is_file()
    assert not (tmp_path / "env.db").exists()
    assert not (tmp_path / "from-file.db").exists()
    loaded = log_events(proc.stderr)["config_loaded"]
    assert loaded["source"] == str(path)
    assert loaded["config"]["database"]["path"] == "cli.db"


SECRET_TOKEN = "tok-8c1f2e7d-do-not-log"
SECRET_PASSWORD = "pw-51b0aa9e-do-not-log"


SECRET_FORMS = {
    "config_before_migrate": lambda f, db: ["--config", f, "migrate", "--db", db],
    "migrate_then_config": lambda f, db: ["migrate", "--config", f, "--db", db],
}


@pytest.mark.parametrize(
    ("form", "secret"),
    [
        ("config_before_migrate", "token"),
        ("migrate_then_config", "token"),
        ("config_before_migrate", "password_in_file"),
        ("migrate_then_config", "password_in_env"),
    ],
)
def test_config_loaded_log_never_contains_secrets(tmp_path, form, secret):
    env: dict[str, str] = {}
    if secret == "token":
        text = f'[nats]\ntoken = "{SECRET_TOKEN}"\n'
        value = SECRET_TOKEN
    elif secret == "password_in_file":
        text = f'[nats]\nuser = "alice"\npassword = "{SECRET_PASSWORD}"\n'
        value = SECRET_PASSWORD
    else:
        text = '[nats]\nuser = "alice"\n'
        env = {"KANADE_NATS_PASSWORD": SECRET_PASSWORD}
        value = SECRET_PASSWORD
    path = write(tmp_path / "secret.toml", text + '[log]\nformat = "json"\n')
    db = str(tmp_path / "s.db")
    proc = run_cli(SECRET_FORMS[form](str(path), db), tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert value not in proc.stderr
    assert value not in proc.stdout
    loaded = log_events(proc.stderr)["config_loaded"]
    # The line is about this file, and shows that a secret is set without its value.
    assert loaded["source"] == str(path)
    nats = loaded["config"]["nats"]
    if secret == "token":
        assert nats["token"] == "***"
    else:
        assert (nats["user"], nats["password"]) == ("alice", "***")
    assert Path(db).is_file()
