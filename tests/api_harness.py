"""apiserver under test: a migrated SQLite file seeded directly, an in-process app.

Rows are written with projectord's own table definitions through a real
read-write connection, then read by the app through its read-only pool: the
same split as in production, without a broker in the loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, Table, insert

from apiserver.app import create_app
from apiserver.auth.identity import token_sha256
from apiserver.config import ApiSettings, load_api_settings
from projectord.database import create_writer_engine
from projectord.migrations import upgrade_to_head
from projectord.timestamps import format_db

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
TOKEN = "test-service-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def ts(delta: timedelta = timedelta(0), base: datetime = NOW) -> str:
    """A stored timestamp ``delta`` from the fixed test clock."""
    return format_db(base + delta)


def migrated(db_path: Path) -> Engine:
    """A database at alembic head, with the writer engine projectord would use."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    return engine


def seed(engine: Engine, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` in one transaction, in order.

    Rows may name different columns; omitted ones take their defaults.
    """
    rows = list(rows)
    with engine.begin() as conn:
        for row in rows:
            conn.execute(insert(table).values(**row))


def api_settings(db_path: Path, **api: Any) -> ApiSettings:
    """Settings for ``db_path`` with one viewer service token (``AUTH``)."""
    settings = load_api_settings(None, env={"KANADE_DB": str(db_path)})
    tokens = {"tests": {"sha256": token_sha256(TOKEN), "role": "viewer"}}
    return settings.replace("apiserver", **{"tokens": tokens, **api})


def client(
    db_path: Path, now: datetime = NOW, settings: ApiSettings | None = None, **api: Any
) -> httpx.AsyncClient:
    """An HTTP client for the app, authenticated with the test token."""
    app = create_app(settings or api_settings(db_path, **api), clock=lambda: now)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH)
