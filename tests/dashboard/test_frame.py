"""Serving the dashboard: hashed and plain assets, the index page, its CSP, fallbacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from api_harness import NOW, api_settings

from apiserver.app import create_app
from apiserver.dashboard import STATIC_DIR, AssetTable, hashed_name

IMMUTABLE = "public, max-age=31536000, immutable"


class SyncClient:
    """GETs against the app in-process, each on its own thread and event loop.

    Every dashboard test is synchronous: once the browser runs, Playwright keeps an
    event loop on the test thread.
    """

    def __init__(self, db_path: Path) -> None:
        self.app = create_app(api_settings(db_path), clock=lambda: NOW)

    async def _get(self, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.get(path)

    def get(self, path: str) -> httpx.Response:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._get(path)).result()


@pytest.fixture
def app(api_db, db_path: Path) -> SyncClient:
    """A client without credentials: the dashboard's files need none."""
    return SyncClient(db_path)


def import_map(html: str) -> dict[str, str]:
    found = re.search(r'<script type="importmap">(.*?)</script>', html, re.S)
    assert found, html
    return json.loads(found.group(1))["imports"]


def test_hashed_assets_are_immutable_and_carry_the_file(app):
    for path in ("lib/dom.js", "app.js", "style.css", "vendor/uplot/uPlot.esm.js"):
        body = (STATIC_DIR / path).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:10]
        hashed = hashed_name(path, body)
        assert digest in hashed and hashed != path
        r = app.get(f"/assets/{hashed}")
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["cache-control"] == IMMUTABLE
        assert r.headers["x-content-type-options"] == "nosniff"
    dom = hashed_name("lib/dom.js", (STATIC_DIR / "lib/dom.js").read_bytes())
    r = app.get(f"/assets/{dom}")
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"


def test_plain_asset_urls_must_be_revalidated(app):
    r = app.get("/assets/lib/view.js")
    assert r.status_code == 200
    assert r.content == (STATIC_DIR / "lib/view.js").read_bytes()
    assert r.headers["cache-control"] == "no-cache"
    css = app.get("/assets/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"


def test_the_import_map_sends_every_module_to_its_hashed_url(app):
    r = app.get("/")
    imports = import_map(r.text)
    modules = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*.js"))
    assert sorted(imports) == [f"/assets/{m}" for m in modules]
    for plain, hashed in imports.items():
        body = (STATIC_DIR / plain.removeprefix("/assets/")).read_bytes()
        assert hashed == "/assets/" + hashed_name(plain.removeprefix("/assets/"), body)
        answer = app.get(hashed)
        assert answer.status_code == 200 and answer.content == body
    # The entry module and the style sheets are referenced by hashed URL.
    assert f'src="{imports["/assets/app.js"]}"' in r.text
    table = AssetTable()
    assert table.by_path["style.css"].hashed_url in r.text
    assert table.by_path["vendor/uplot/uPlot.min.css"].hashed_url in r.text


def test_index_has_a_strict_csp_allowing_only_its_import_map(app):
    r = app.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    csp = dict(
        (part.split(" ", 1) + [""])[:2] for part in r.headers["content-security-policy"].split("; ")
    )
    assert csp["default-src"] == "'none'"
    inline = re.search(r'<script type="importmap">(.*?)</script>', r.text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert csp["frame-ancestors"] == "'none'"
    # No other inline script: every other <script> has a src.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
    assert [attrs for attrs, body in scripts if body.strip() and "importmap" not in attrs] == []


DEEP_LINKS = ["/agents/PC-001", "/activity?status=failure", "/dashboard", "/x/y/z"]


@pytest.mark.parametrize("path", DEEP_LINKS)
def test_deep_links_answer_the_index_page(app, path):
    index = (app.get("/")).text
    r = app.get(path)
    assert r.status_code == 200
    assert r.text == index
    assert "content-security-policy" in r.headers


def test_unknown_api_paths_stay_json_404(app):
    for path in ("/api/nope", "/api", "/api/agents/x/nope/deeper"):
        r = app.get(path)
        assert r.status_code == 404, path
        assert r.json() == {"error": "no such API route"}
    # A wrong method on an API route is still that route's 405, not the index page.
    assert (app.get("/api/auth/login")).status_code == 405


def test_a_missing_asset_is_a_plain_404(app):
    for path in ("/assets/nope.js", "/assets/lib/dom.0000000000.js", "/assets/"):
        r = app.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/plain")
        assert "<html" not in r.text


def test_health_is_not_the_index_page(app):
    r = app.get("/health")
    assert r.text == "ok"
