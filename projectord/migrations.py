"""Schema upgrades through alembic, run by projectord at start and by ``projectord migrate``."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from alembic import command

_PACKAGE_DIR = Path(__file__).resolve().parent


class MigrationsNotFound(Exception):
    """Neither the installed package nor a source checkout carries the migrations."""


def script_location() -> Path:
    """Where the alembic scripts are: inside a wheel, or at the repository root."""
    for candidate in (_PACKAGE_DIR / "_migrations", _PACKAGE_DIR.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationsNotFound(f"no alembic scripts beside {_PACKAGE_DIR}")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine) -> tuple[str | None, str | None]:
    """Upgrade the database behind ``engine`` to head; return (before, after)."""
    before = current_revision(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, current_revision(engine)
