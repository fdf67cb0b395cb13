"""apiserver's configuration: its section of the shared file, errors naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from apiserver.auth.identity import token_sha256
from apiserver.config import load_api_settings
from projectord.config import ConfigError, load_settings

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def write(tmp_path, text: str):
    path = tmp_path / "kanade.toml"
    path.write_text(text)
    return path


def test_one_file_serves_both_processes(tmp_path):
    path = write(
        tmp_path,
        f"""
[database]
path = "state/backend.db"
[nats]
url = "nats://broker:4222"
[projectord]
batch_size = 500
[apiserver]
bind = "127.0.0.1:9000"
[apiserver.accounts.alice]
password_hash = "{HASH}"
role = "viewer"
[apiserver.tokens.ci]
sha256 = "{token_sha256("t")}"
role = "admin"
""",
    )
    api = load_api_settings(path, env={})
    assert api.api["bind"] == "127.0.0.1:9000" and str(api.db_path) == "state/backend.db"
    assert api.api["accounts"]["alice"]["role"] == "viewer"
    assert api.api["tokens"]["ci"]["role"] == "admin"
    projectord = load_settings(path, env={})  # and projectord skips [apiserver]
    assert projectord.section("projectord")["batch_size"] == 500


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[apiserver]\nport = 1\n", "unknown key 'apiserver.port'"),
        ('[apiserver]\nbind = "localhost"\n', "config key 'apiserver.bind': expected HOST:PORT"),
        ("[apiserver]\nsession_max_age_s = 5\n", "apiserver.session_max_age_s"),
        ("[apiserver]\nworkers = 0\n", "apiserver.workers"),
        ('[apiserver]\nworkers = "two"\n', "apiserver.workers"),
        (
            "[apiserver]\nproxy_hops = -1\n",
            "apiserver.proxy_hops': expected an integer from 0 to 5",
        ),
        ('[apiserver]\nproxy_hops = "one"\n', "apiserver.proxy_hops"),
        (
            "[apiserver]\ndb_inline_ms = -1\n",
            "apiserver.db_inline_ms': expected an integer from 0 to 1000",
        ),
        ('[apiserver]\ndb_inline_ms = "fast"\n', "apiserver.db_inline_ms"),
        ("[apiserver]\naccounts = 3\n", "apiserver.accounts': expected a table"),
        (
            '[apiserver.accounts.alice]\npassword_hash = "plain"\nrole = "viewer"\n',
            "account 'alice': an argon2id hash",
        ),
        (
            f'[apiserver.accounts.alice]\npassword_hash = "{HASH}"\nrole = "root"\n',
            "account 'alice': role one of viewer, operator, admin",
        ),
        (f'[apiserver.accounts.alice]\npassword_hash = "{HASH}"\n', "exactly the keys"),
        ('[apiserver.tokens.ci]\nsha256 = "abc"\nrole = "viewer"\n', "token 'ci': 64 lowercase"),
        ("[apiserver.accounts.'bad name']\n", "account names of letters"),
        ("[webserver]\n", "unknown section [webserver]"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as caught:
        load_api_settings(write(tmp_path, text), env={})
    assert needle in str(caught.value)


def test_the_session_secret_comes_from_the_environment_and_is_never_echoed(tmp_path):
    path = write(tmp_path, '[apiserver]\nsession_secret = "from-file"\n')
    env = {"KANADE_API_SESSION_SECRET": "from-env", "KANADE_DB": "x.db"}
    settings = load_api_settings(path, env=env)
    assert settings.api["session_secret"] == "from-env" and str(settings.db_path) == "x.db"
    bad = write(tmp_path, "[apiserver]\nsession_secret = 12345\n")
    with pytest.raises(ConfigError) as caught:
        load_api_settings(bad, env={})
    assert "apiserver.session_secret" in str(caught.value) and "12345" not in str(caught.value)


def test_the_command_line_reports_config_errors_with_status_2(tmp_path):
    path = write(tmp_path, "[apiserver]\nbind = 8080\n")
    run = subprocess.run(
        [sys.executable, "-m", "apiserver", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "apiserver.bind" in run.stderr and "expected a string" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "apiserver", "--bind", "1.2.3.4:8080", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2  # the file is still read and still wrong


def test_hash_password_and_new_token_commands():
    run = subprocess.run(
        [sys.executable, "-m", "apiserver", "hash-password"],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stdout.startswith("$argon2id$")
    short = subprocess.run(
        [sys.executable, "-m", "apiserver", "hash-password"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2 and "at least 8" in short.stderr
    token = subprocess.run(
        [sys.executable, "-m", "apiserver", "new-token"], capture_output=True, text=True, timeout=60
    )
    lines = token.stdout.splitlines()
    value = lines[0].rsplit(" ", 1)[1]
    assert f'sha256 = "{token_sha256(value)}"' in lines
