"""apiserver's request metrics: by route template and status, summed over the workers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from api_harness import AUTH, api_settings, migrated
from harness import apiserver_cmd, free_port, wait_http_ok
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route

from apiserver.app import create_app
from apiserver.request_metrics import RequestMetrics

REQUESTS = "kanade_apiserver_requests_total"
LATENCY = "kanade_apiserver_request_duration_seconds"


def samples(text: str, name: str) -> dict[tuple[str, str, str], float]:
    """Values of ``name`` in a scrape, by (method, route, status)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[s.labels["method"], s.labels["route"], s.labels["status"]] = s.value
    return out


def start(tmp_path: Path, port: int, metrics_port: int, workers: int) -> subprocess.Popen[str]:
    config = tmp_path / "kanade.toml"
    config.write_text(
        f'[database]\npath = "{tmp_path / "backend.db"}"\n'
        f'[apiserver]\nbind = "127.0.0.1:{port}"\nworkers = {workers}\n'
        f'metrics_bind = "127.0.0.1:{metrics_port}"\nauth_disabled = true\n'
    )
    # The run's metrics directory is made under TMPDIR, where the test can see it.
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "KANADE_CONFIG": "", "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.Popen(
        apiserver_cmd("--config", str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", proc)
        wait_http_ok(f"http://127.0.0.1:{metrics_port}/metrics", proc)
    except (AssertionError, TimeoutError):
        proc.kill()
        raise AssertionError(proc.communicate()[0]) from None
    return proc


@pytest.mark.parametrize("workers", [2, 1], ids=["2 workers", "1 worker"])
def test_a_scrape_counts_the_requests_of_every_worker_by_route_template_and_status(
    tmp_path, workers
):
    migrated(tmp_path / "backend.db").dispose()
    port, metrics_port = free_port(), free_port()
    proc = start(tmp_path, port, metrics_port, workers)
    # The processes that serve: the forked workers (beside the throttle's
    # manager process), or the one process itself.
    servers = {c.pid for c in psutil.Process(proc.pid).children()} if workers > 1 else {proc.pid}
    try:
        sent = {
            ("GET", "/api/version", "200"): ["/api/version"] * 40,
            ("GET", "/api/agents/{pc_id}", "404"): [f"/api/agents/pc-{i}" for i in range(10)],
            ("GET", "/api/agents", "400"): ["/api/agents?limit=many"] * 6,
            ("GET", "unmatched", "404"): [f"/api/no-such-thing/{i}" for i in range(4)],
        }
        scrape_url = f"http://127.0.0.1:{metrics_port}/metrics"
        # The start-up polls of /health are counted too: only the difference is ours.
        before = samples(httpx.get(scrape_url).text, REQUESTS)
        # No keep-alive: each request is a new connection, which the kernel may
        # hand to either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            for (_method, _route, status), paths in sent.items():
                for path in paths:
                    assert client.get(path).status_code == int(status), path
        scrape = httpx.get(scrape_url).text
        after = samples(scrape, REQUESTS)
        counts = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        assert counts == {key: float(len(paths)) for key, paths in sent.items()}
        assert sum(counts.values()) == sum(len(p) for p in sent.values())
        assert samples(scrape, LATENCY + "_count") == after
        assert set(before) == {("GET", "/health", "200")}
        # Raw paths never become labels.
        assert "pc-3" not in scrape and "no-such-thing" not in scrape
        # Each worker wrote its own files, which the scrape summed.
        metrics_dirs = list((tmp_path / "tmp").glob("kanade-apiserver-metrics-*"))
        assert len(metrics_dirs) == 1
        writers = {int(f.stem.split("_")[-1]) for f in metrics_dirs[0].glob("counter_*.db")}
        assert len(writers) == workers and writers <= servers
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not metrics_dirs[0].exists()  # the run's directory is removed at exit


def test_without_metrics_bind_no_listener_and_no_counting(tmp_path):
    app = create_app(api_settings(tmp_path / "backend.db"))
    assert app.state.metrics_registry is None
    assert not any(m.cls is RequestMetrics for m in app.user_middleware)


async def test_methods_and_failures_are_counted_with_bounded_labels(tmp_path):
    async def boom(request: Request) -> None:
        raise RuntimeError("handler bug")

    metrics = []

    def counting(app):
        metrics.append(RequestMetrics(app))
        return metrics[-1]

    app = Starlette(
        routes=[Route("/boom/{item}", boom, methods=["GET"])],
        middleware=[Middleware(counting)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/boom/1")).status_code == 500
        assert (await client.request("BREW", "/boom/2")).status_code == 405
        assert (await client.get("/elsewhere")).status_code == 404
    registry = metrics[0].registry

    def count(method: str, route: str, status: str) -> float | None:
        labels = {"method": method, "route": route, "status": status}
        return registry.get_sample_value(REQUESTS, labels)

    assert count("GET", "/boom/{item}", "500") == 1
    assert count("other", "/boom/{item}", "405") == 1
    assert count("GET", "unmatched", "404") == 1


async def test_the_app_counts_in_its_own_registry_when_metrics_are_on(tmp_path):
    migrated(tmp_path / "backend.db").dispose()
    settings = api_settings(tmp_path / "backend.db", metrics_bind="127.0.0.1:9464")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
        for _ in range(3):
            assert (await c.get("/api/agents/pc-1")).status_code == 404
        assert (await c.get("/api/auth/me", headers={"Authorization": ""})).status_code == 401
    registry = app.state.metrics_registry
    labels = {"method": "GET", "route": "/api/agents/{pc_id}", "status": "404"}
    assert registry.get_sample_value(REQUESTS, labels) == 3
    assert registry.get_sample_value(LATENCY + "_count", labels) == 3
    labels = {"method": "GET", "route": "/api/auth/me", "status": "401"}
    assert registry.get_sample_value(REQUESTS, labels) == 1


def run_with(tmp_path: Path, apiserver_section: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "kanade.toml"
    config.write_text(f"[apiserver]\n{apiserver_section}\n")
    return subprocess.run(
        apiserver_cmd("--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KANADE_CONFIG": ""},
    )


def test_a_bad_metrics_bind_is_a_config_error_naming_the_key(tmp_path):
    bad = run_with(tmp_path, 'metrics_bind = "9464"')
    assert bad.returncode == 2
    assert "apiserver.metrics_bind" in bad.stderr and "HOST:PORT" in bad.stderr
    same = run_with(tmp_path, 'bind = "127.0.0.1:8089"\nmetrics_bind = "127.0.0.1:8089"')
    assert same.returncode == 2
    assert "apiserver.metrics_bind" in same.stderr and "apiserver.bind" in same.stderr
