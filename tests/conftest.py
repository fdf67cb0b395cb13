from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import (  # noqa: E402
    InProcessProjectord,
    NatsServer,
    connect,
    settings_for,
)


@pytest.fixture
def nats_server(tmp_path: Path):
    """A fresh nats-server with JetStream for one test."""
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "backend.db"


@pytest.fixture
async def nc(nats_server: NatsServer):
    client = await connect(nats_server)
    yield client
    await client.close()


@pytest.fixture
async def js(nc):
    return nc.jetstream()


@pytest.fixture
async def projectord_factory(nats_server: NatsServer, db_path: Path):
    """Start in-process projectord instances; any still running are stopped at teardown."""
    running: list[InProcessProjectord] = []

    async def start(**options) -> InProcessProjectord:
        p = await InProcessProjectord(settings_for(nats_server, db_path, **options)).start()
        running.append(p)
        return p

    yield start
    for p in running:
        if not p.task.done():
            await p.stop()


@pytest.fixture
async def projectord(projectord_factory):
    return await projectord_factory()


@pytest.fixture
def api_db(db_path: Path):
    """A migrated, empty database and the read-write engine to seed it with."""
    from api_harness import migrated

    engine = migrated(db_path)
    yield engine
    engine.dispose()


@pytest.fixture
async def api(api_db, db_path: Path):
    """An authenticated client of an app over ``api_db``; the clock is api_harness.NOW."""
    from api_harness import client

    async with client(db_path) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: once Playwright's browser is up it keeps an event
    loop on the test thread, and the async tests after it could not start theirs."""
    items.sort(key=lambda item: "tests/dashboard/" in item.nodeid.replace("\\", "/"))
