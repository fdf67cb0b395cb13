"""apiserver's frame: auth, JSON errors, read-only access, a missing database."""

from __future__ import annotations

import sqlite3

import pytest
from api_harness import AUTH, api_settings, client

from apiserver.readonly_db import DatabaseUnavailable, ReadDatabase


async def test_health_and_version_are_public(api_db, db_path):
    async with client(db_path) as c:
        c.headers.pop("Authorization")
        health = await c.get("/health")
        assert (health.status_code, health.text) == (200, "ok")
        version = await c.get("/api/version")
        assert version.status_code == 200 and version.json()["version"]
        me = await c.get("/api/auth/me")
        assert me.status_code == 401 and me.json() == {"error": "authentication required"}


async def test_unknown_api_routes_are_json_404(api):
    for path in ("/api/nope", "/api/agents/x/nope/deeper", "/api"):
        r = await api.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"error": "no such API route"}


async def test_a_wrong_token_is_401(api_db, db_path):
    async with client(db_path) as c:
        r = await c.get("/api/auth/me", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = await c.get("/api/auth/me", headers=AUTH)
        assert r.json() == {"username": "tests", "role": "viewer", "via": "token"}


async def test_the_database_connection_cannot_write(api_db, db_path):
    db = ReadDatabase(db_path)

    def write(conn):
        conn.exec_driver_sql("INSERT INTO agents (pc_id, updated_at) VALUES ('x', 'y')")

    with pytest.raises(DatabaseUnavailable, match="readonly|read-only|query_only"):
        await db.run(write)
    assert db.query(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM agents").scalar()) == 0
    db.close()
    # And the file is untouched by a raw attempt through the same connector.
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM agents").fetchone() == (0,)


async def test_a_missing_database_is_503_until_it_exists(tmp_path):
    db_path = tmp_path / "later" / "backend.db"
    async with client(db_path, settings=api_settings(db_path)) as c:
        r = await c.get("/api/auth/me")
        assert r.status_code == 200  # no database needed
        assert not db_path.exists()  # and apiserver never creates it
