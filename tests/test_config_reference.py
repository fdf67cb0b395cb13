"""The configuration reference is generated from the schemas and must be up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from apiserver.config import API_SCHEMA
from projectord.config import SCHEMA

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "config_reference.py"
REFERENCE = ROOT / "docs" / "configuration.md"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_the_committed_reference_is_what_the_schemas_generate():
    checked = run("--check", str(REFERENCE))
    assert checked.returncode == 0, checked.stderr


def test_every_key_of_both_processes_has_a_row(tmp_path):
    text = run().stdout
    for schema in (SCHEMA, API_SCHEMA):
        for section, keys in schema.items():
            assert f"## [{section}]" in text
            for key in keys:
                assert f"| `{key.name}` |" in text, f"{section}.{key.name}"


def test_a_stale_reference_is_reported_with_the_command_that_fixes_it(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(REFERENCE.read_text().replace("| `bind` |", "| `listen` |"))
    checked = run("--check", str(stale))
    assert checked.returncode == 1
    assert "out of date; run: python scripts/config_reference.py" in checked.stderr


def test_the_example_config_loads_in_both_processes_and_shows_every_scalar_key():
    from apiserver.config import load_api_settings
    from projectord.config import load_settings

    example = ROOT / "deploy" / "kanade.example.toml"
    load_settings(example, env={})
    load_api_settings(example, env={})
    text = example.read_text()
    for schema in (SCHEMA, API_SCHEMA):
        for section, keys in schema.items():
            for key in keys:
                # Secrets and credentials belong in the environment file instead.
                if key.kind is not dict and not key.secret and "(env KANADE_" not in key.help:
                    assert f"{key.name} =" in text, f"{section}.{key.name} missing from the example"
