"""docs/log-events.md documents every structlog event of both processes, and no other.

The events are read from the source with ``ast``: the first positional string
literal of every call to a method named debug, info, warning, error, exception
or critical (``log.info("event", ...)``, ``self.log.warning(\\n "event", ...)``,
``structlog.get_logger(...).warning("event")``). Calls on the stdlib ``logging``
module or on a ``logging.getLogger`` logger are not structlog events and are
left out. The documented events are the first cells, written as `` `event` ``,
of the rows of every table whose header starts with ``event``.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "projectord", ROOT / "apiserver")
REFERENCE = ROOT / "docs" / "log-events.md"

LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# structlog's add_log_level names the level of .exception() "error".
LEVEL_OF = {"exception": "error"}
ROW_EVENT = re.compile(r"^`([a-z][a-z0-9_]*)`$")


def _stdlib_loggers(tree: ast.Module) -> set[str]:
    """Receivers that are stdlib logging: the module and ``getLogger`` results."""
    modules, factories = {"logging"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "logging")
        elif isinstance(node, ast.ImportFrom) and node.module == "logging":
            factories.update(a.asname or a.name for a in node.names if a.name == "getLogger")
    factories.update(f"{m}.getLogger" for m in modules)
    names = set(modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            if ast.unparse(node.value.func) in factories:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(ast.unparse(t) for t in targets)
    return names


def _event_of(call: ast.Call) -> str | None:
    if call.args:
        first = call.args[0]
    else:  # log.info(event="...") is the same call spelled with a keyword
        first = next((k.value for k in call.keywords if k.arg == "event"), None)
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        if EVENT_NAME.match(first.value):
            return first.value
    return None


def events_in_source(source: str, where: str = "<source>") -> dict[str, set[tuple[str, str]]]:
    """event -> {(level, "file:line")} for every structlog call in ``source``."""
    tree = ast.parse(source, filename=where)
    stdlib = _stdlib_loggers(tree)
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method = node.func.attr
        if method not in LOG_METHODS or ast.unparse(node.func.value) in stdlib:
            continue
        event = _event_of(node)
        if event is not None:
            found[event].add((LEVEL_OF.get(method, method), f"{where}:{node.lineno}"))
    return found


def events_in_code(roots: tuple[Path, ...] | None = None) -> dict[str, set[tuple[str, str]]]:
    """Every event under ``roots`` (projectord and apiserver by default), with its call sites."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for root in SOURCES if roots is None else roots:
        for path in sorted(root.rglob("*.py")):
            where = str(path.relative_to(root.parent))
            for event, sites in events_in_source(path.read_text(encoding="utf-8"), where).items():
                found[event] |= sites
    return found


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def documented_events(text: str) -> dict[str, list[set[str]]]:
    """event -> the level cells of its rows, from every table headed ``| event | ...``."""
    rows: dict[str, list[set[str]]] = defaultdict(list)
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if header[0] != "event" or set(line.replace("|", "").strip()) <= set("-: "):
            continue
        match = ROW_EVENT.match(cells[0])
        if match:
            level = cells[1] if len(cells) > 1 and header[1:2] == ["level"] else ""
            rows[match.group(1)].append({w for w in re.split(r"[\s,/]+", level) if w})
    return rows


def _where(sites: set[tuple[str, str]]) -> str:
    return ", ".join(sorted(w for _, w in sites))


# ------------------------------------------------------------------ the reference


def test_every_event_in_the_code_is_documented():
    code, docs = events_in_code(), documented_events(REFERENCE.read_text(encoding="utf-8"))
    assert code, "no log events found in the source: the collector is broken"
    missing = {e: _where(sites) for e, sites in code.items() if e not in docs}
    assert not missing, "log events missing from docs/log-events.md:\n" + "\n".join(
        f"  {e}  ({where})" for e, where in sorted(missing.items())
    )


def test_every_documented_event_still_exists():
    code, docs = events_in_code(), documented_events(REFERENCE.read_text(encoding="utf-8"))
    stale = sorted(set(docs) - set(code))
    assert not stale, "docs/log-events.md documents events no code logs any more: " + ", ".join(
        stale
    )


def test_documented_levels_match_the_code():
    code, docs = events_in_code(), documented_events(REFERENCE.read_text(encoding="utf-8"))
    wrong = []
    for event, level_cells in sorted(docs.items()):
        if event not in code:
            continue  # reported as stale above
        in_code = {level for level, _ in code[event]}
        in_docs = set().union(*level_cells)
        if in_code != in_docs:
            wrong.append(f"  {event}: code {sorted(in_code)}, docs {sorted(in_docs)}")
    assert not wrong, "levels in docs/log-events.md differ from the code:\n" + "\n".join(wrong)


# ------------------------------------------------------------------ the checks themselves


SAMPLE = """
import logging
from logging import getLogger

import structlog

log = structlog.get_logger("x")
std = logging.getLogger("lib")


class C:
    def __init__(self):
        self.log = log.bind(stream="S")

    def run(self, parser):
        self.log.warning(
            "multi_line_event",
            seq=1,
        )
        log.exception("crashed_event")
        log.info(event="keyword_event")
        structlog.get_logger("y").error("chained_event", detail="d")
        log.info(f"not_{parser}")
        log.info("Not An Event Name")
        logging.warning("stdlib_module_call")
        std.error("stdlib_logger_call")
        self.lib = getLogger("lib")
        self.lib.info("stdlib_attribute_logger_call")
        parser.error("usage: bad option")
"""


def test_the_collector_finds_structlog_events_and_skips_the_rest():
    found = events_in_source(SAMPLE)
    assert {e: {lvl for lvl, _ in sites} for e, sites in found.items()} == {
        "multi_line_event": {"warning"},
        "crashed_event": {"error"},
        "keyword_event": {"info"},
        "chained_event": {"error"},
    }


def test_a_new_event_in_the_code_would_be_reported(tmp_path):
    package = tmp_path / "projectord"
    package.mkdir()
    (package / "new.py").write_text(
        'import structlog\nlog = structlog.get_logger("p")\nlog.info(\n    "brand_new_event")\n'
    )
    found = events_in_code((package,))
    assert found == {"brand_new_event": {("info", "projectord/new.py:3")}}
    assert "brand_new_event" not in documented_events(REFERENCE.read_text(encoding="utf-8"))


def test_only_event_rows_of_event_tables_count():
    text = "\n".join(
        [
            "| field | meaning |",
            "|---|---|",
            "| `stream` | not an event |",
            "",
            "| event | level | meaning | what to do |",
            "|---|---|---|---|",
            "| `one_event` | info | a | nothing |",
            "| `two_event` | warning, error | b | c |",
            "| plain text | info | not an event | |",
        ]
    )
    assert documented_events(text) == {"one_event": [{"info"}], "two_event": [{"warning", "error"}]}
