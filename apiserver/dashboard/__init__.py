"""The dashboard: a single-page app of plain ES modules served from this package.

There is no build step. At start-up every file under ``static/`` is read and
hashed; each is served twice under ``/assets/``: at a content-hashed URL that
browsers may cache forever, and at its plain URL, which they must revalidate.
``index.html`` carries an import map from every plain module URL to its hashed
URL, so the relative imports between modules stay plain in the source yet load
the immutable copies. Every other GET outside ``/api`` answers ``index.html``,
so deep links and reloads land in the app, which routes in the browser.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

STATIC_DIR = Path(__file__).parent / "static"
ASSET_PREFIX = "/assets/"
HASH_CHARS = 10
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
INDEX_TEMPLATE = "index.html"

# Types the browser must get right: a module script with a wrong type is refused.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE files
}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **SECURITY_HEADERS,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": REVALIDATE,
}


@dataclass(frozen=True)
class Asset:
    """One static file: its path under ``static/``, its hashed path and its bytes."""

    path: str
    hashed_path: str
    body: bytes
    media_type: str

    @property
    def url(self) -> str:
        return ASSET_PREFIX + self.path

    @property
    def hashed_url(self) -> str:
        return ASSET_PREFIX + self.hashed_path


def hashed_name(path: str, body: bytes) -> str:
    """``lib/dom.js`` -> ``lib/dom.<first 10 hex of sha256>.js`` (before the last suffix)."""
    digest = hashlib.sha256(body).hexdigest()[:HASH_CHARS]
    pure = PurePosixPath(path)
    if not pure.suffix:
        return f"{path}.{digest}"
    return str(pure.with_name(f"{pure.stem}.{digest}{pure.suffix}"))


def media_type(path: str) -> str:
    suffix = PurePosixPath(path).suffix
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


class AssetTable:
    """Every file under ``root`` (the index template excepted), by plain and hashed path."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.by_path: dict[str, Asset] = {}
        self.by_hashed: dict[str, Asset] = {}
        for file in sorted(root.rglob("*")):
            path = file.relative_to(root).as_posix()
            if not file.is_file() or path == INDEX_TEMPLATE:
                continue
            body = file.read_bytes()
            asset = Asset(path, hashed_name(path, body), body, media_type(path))
            self.by_path[path] = asset
            self.by_hashed[asset.hashed_path] = asset
        self.template = (root / INDEX_TEMPLATE).read_text(encoding="utf-8")

    def find(self, path: str) -> tuple[Asset, bool] | None:
        """The asset at ``path`` (under /assets/) and whether the path was the hashed one."""
        if path in self.by_hashed:
            return self.by_hashed[path], True
        if path in self.by_path:
            return self.by_path[path], False
        return None

    def import_map(self) -> str:
        """The import map's JSON: every plain module URL to its hashed URL."""
        imports = {a.url: a.hashed_url for a in self.by_path.values() if a.path.endswith(".js")}
        return json.dumps({"imports": imports}, indent=2, sort_keys=True)


@dataclass(frozen=True)
class IndexPage:
    """``index.html`` with its import map and hashed URLs filled in, and its CSP."""

    body: bytes
    csp: str


def render_index(assets: AssetTable) -> IndexPage:
    """Fill the template's ``{{...}}`` slots; the CSP allows exactly this import map inline."""
    import_map = assets.import_map()
    html = assets.template
    slots = {
        "{{importmap}}": import_map,
        "{{app.js}}": assets.by_path["app.js"].hashed_url,
        "{{style.css}}": assets.by_path["style.css"].hashed_url,
        "{{uplot.css}}": assets.by_path["vendor/uplot/uPlot.min.css"].hashed_url,
    }
    for slot, value in slots.items():
        if slot not in html:
            raise ValueError(f"{INDEX_TEMPLATE}: slot {slot} missing")
        html = html.replace(slot, value)
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    csp = "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'sha256-{digest}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
    return IndexPage(html.encode("utf-8"), csp)


class AppPath(Convertor[str]):
    """Any path but ``/api``, ``/api/...`` and ``/assets/...``.

    Those never reach the page route, so an unknown API path keeps the app's
    JSON 404 and a wrong method on an API path its 405.
    """

    regex = r"(?!api(?:/|$))(?!assets/).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("app_path", AppPath())


def dashboard_routes(assets: AssetTable | None = None) -> list[BaseRoute]:
    """The ``/assets/...`` route and the catch-all ``index.html`` route.

    Mount them after every API route: the catch-all must not shadow them.
    """
    table = assets or AssetTable()
    index = render_index(table)

    async def asset(request: Request) -> Response:
        found = table.find(request.path_params["path"])
        if found is None:
            return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)
        item, hashed = found
        headers = {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE if hashed else REVALIDATE}
        return Response(item.body, media_type=item.media_type, headers=headers)

    async def page(request: Request) -> Response:
        headers = {**PAGE_HEADERS, "Content-Security-Policy": index.csp}
        return Response(index.body, media_type=MEDIA_TYPES[".html"], headers=headers)

    return [
        Route(ASSET_PREFIX + "{path:path}", asset, methods=["GET"]),
        Route("/{path:app_path}", page, methods=["GET"]),
    ]
