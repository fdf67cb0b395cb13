"""Property-based sweep of the whole API from its own OpenAPI document.

schemathesis generates valid and invalid parameters for every route and checks
that nothing answers 500, that statuses and content types are documented, and
that every response body matches its declared schema.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from api_harness import AUTH, NOW, api_settings, migrated
from api_sample_data import seed_everything
from schemathesis.checks import ignored_auth
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apiserver.app import all_endpoints, create_app

EXCLUDED = [
    # Sends a made-up cookie next to our valid token and expects 401; a valid
    # bearer token rightly wins. tests/test_api_auth.py covers authentication.
    ignored_auth,
    # Expects every schema-valid request to succeed, but api.md's own 400 rules
    # (an invalid regex, from >= to, too many buckets, a cursor from another
    # list) cannot be expressed in JSON Schema. Each route's tests check them.
    positive_data_acceptance,
]
# Login is stateful (throttling); tests/test_api_auth.py covers it.
ROUTES = [(e.method, e.path) for e in all_endpoints() if e.path != "/api/auth/login"]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("schemathesis") / "backend.db"
    engine = migrated(db_path)
    seed_everything(engine)
    engine.dispose()
    app = create_app(api_settings(db_path), clock=lambda: NOW)
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_keeps_its_contract(api_schema, method, path):
    operation = api_schema[path][method]

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case):
        case.call_and_validate(headers=AUTH, excluded_checks=EXCLUDED)

    run()
