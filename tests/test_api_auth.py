"""Dashboard login, session cookies, service tokens, throttling, auth disabled."""

from __future__ import annotations

import httpx
import pytest
from api_harness import TOKEN, api_settings

from apiserver.app import create_app
from apiserver.auth.passwords import hash_password, verify_password
from apiserver.auth.throttle import LoginThrottle
from apiserver.config import load_api_settings
from apiserver.forwarded_client import forwarded_client
from projectord.config import ConfigError

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def accounts():
    return {
        "alice": {"password_hash": hash_password(PASSWORD), "role": "viewer"},
        "root": {"password_hash": hash_password(PASSWORD + "!"), "role": "admin"},
    }


def app_client(db_path, clock=None, **api) -> httpx.AsyncClient:
    app = create_app(api_settings(db_path, **api), monotonic=clock or Clock())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def login(c: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await c.post("/api/auth/login", json={"username": user, "password": password})


async def test_login_sets_a_strict_http_only_session_cookie(api_db, db_path, accounts):
    async with app_client(db_path, accounts=accounts, session_max_age_s=3600) as c:
        r = await login(c, "alice", PASSWORD)
        assert r.status_code == 200 and r.json() == {"username": "alice", "role": "viewer"}
        cookie = r.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=3600", "Path=/"):
            assert attribute.lower() in cookie.lower(), attribute
        assert "secure" not in cookie.lower()
        me = await c.get("/api/auth/me")
        assert me.json() == {"username": "alice", "role": "viewer", "via": "session"}
        out = await c.post("/api/auth/logout")
        assert out.status_code == 200 and "max-age=0" in out.headers["set-cookie"].lower()
        assert (await c.get("/api/auth/me")).status_code == 401


async def test_the_secure_flag_follows_the_config(api_db, db_path, accounts):
    async with app_client(db_path, accounts=accounts, cookie_secure=True) as c:
        r = await login(c, "alice", PASSWORD)
        assert "secure" in r.headers["set-cookie"].lower()


async def test_a_tampered_cookie_or_a_removed_account_is_401(api_db, db_path, accounts):
    async with app_client(db_path, accounts=accounts, session_secret="s" * 32) as c:
        r = await login(c, "alice", PASSWORD)
        value = r.cookies["kanade_session"]
        c.cookies.clear()
        c.cookies.set("kanade_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
        assert (await c.get("/api/auth/me")).status_code == 401
    # Same secret, the account removed from the config: the old cookie is refused.
    remaining = {"root": accounts["root"]}
    async with app_client(db_path, accounts=remaining, session_secret="s" * 32) as c:
        c.cookies.set("kanade_session", value)
        assert (await c.get("/api/auth/me")).status_code == 401
    async with app_client(db_path, accounts=accounts, session_secret="s" * 32) as c:
        c.cookies.set("kanade_session", value)
        assert (await c.get("/api/auth/me")).json()["username"] == "alice"


async def test_unknown_user_and_wrong_password_look_the_same(api_db, db_path, accounts):
    async with app_client(db_path, accounts=accounts) as c:
        wrong = await login(c, "alice", "nope-nope-nope")
        unknown = await login(c, "mallory", PASSWORD)
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() == {"error": "invalid user name or password"}
        assert "set-cookie" not in wrong.headers


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "expected JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"username": "alice"}', "'password'"),
        (b'{"username": 5, "password": "x"}', "'username'"),
        (b"x" * 5000, "at most 4096 bytes"),
    ],
)
async def test_bad_login_bodies_name_the_problem(api_db, db_path, accounts, body, needle):
    async with app_client(db_path, accounts=accounts) as c:
        r = await c.post("/api/auth/login", content=body)
        assert r.status_code in (400, 413)
        assert needle in r.json()["error"]


async def test_five_failures_lock_the_user_for_fifteen_minutes(api_db, db_path, accounts):
    clock = Clock()
    async with app_client(db_path, clock, accounts=accounts) as c:
        for _ in range(5):
            assert (await login(c, "alice", "wrong-password")).status_code == 401
        locked = await login(c, "alice", PASSWORD)  # even the right password
        assert locked.status_code == 429
        assert locked.headers["retry-after"] == str(15 * 60 + 1)
        assert (await login(c, "root", PASSWORD + "!")).status_code == 200  # others unaffected
        clock.t += 15 * 60 - 10
        assert (await login(c, "alice", PASSWORD)).headers["retry-after"] == "11"
        clock.t += 11
        assert (await login(c, "alice", PASSWORD)).status_code == 200


async def test_a_success_clears_the_users_failures(api_db, db_path, accounts):
    async with app_client(db_path, accounts=accounts) as c:
        for _ in range(4):
            await login(c, "alice", "wrong-password")
        assert (await login(c, "alice", PASSWORD)).status_code == 200
        for _ in range(4):
            await login(c, "alice", "wrong-password")
        assert (await login(c, "alice", PASSWORD)).status_code == 200


def test_thirty_failures_a_minute_block_the_address():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for i in range(30):
        assert throttle.retry_after(f"user{i}", "10.0.0.1") is None
        throttle.failed(f"user{i}", "10.0.0.1")
        clock.t += 1
    assert throttle.retry_after("someone-new", "10.0.0.1") == 31  # first failure ages out at 60 s
    assert throttle.retry_after("someone-new", "10.0.0.2") is None
    clock.t += 31
    assert throttle.retry_after("someone-new", "10.0.0.1") is None


def test_the_throttle_maps_stay_bounded():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for i in range(10_000):
        throttle.failed(f"user{i}", f"10.0.{i // 256}.{i % 256}")
        if i % 100 == 0:
            clock.t += 61  # older entries expire
    assert len(throttle.users) <= 4097 and len(throttle.addresses) <= 4097


async def test_service_tokens_authenticate_and_wrong_ones_do_not(api_db, db_path):
    async with app_client(db_path) as c:
        ok = await c.get("/api/auth/me", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.json() == {"username": "tests", "role": "viewer", "via": "token"}
        for header in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN):
            assert (
                await c.get("/api/auth/me", headers={"Authorization": header})
            ).status_code == 401


async def test_auth_disabled_serves_everyone_as_admin_on_loopback(api_db, db_path):
    async with app_client(db_path, auth_disabled=True) as c:
        assert (await c.get("/api/auth/me")).json() == {
            "username": "anonymous",
            "role": "admin",
            "via": "disabled",
        }


def test_auth_disabled_is_refused_off_loopback(tmp_path):
    path = tmp_path / "api.toml"
    path.write_text('[apiserver]\nbind = "0.0.0.0:8080"\nauth_disabled = true\n')
    with pytest.raises(ConfigError, match="auth_disabled: allowed only when bound to loopback"):
        load_api_settings(path, env={})
    for host in ("127.0.0.1:8080", "[::1]:8080", "localhost:9000"):
        path.write_text(f'[apiserver]\nbind = "{host}"\nauth_disabled = true\n')
        assert load_api_settings(path, env={}).api["auth_disabled"] is True


def test_password_hashes_are_argon2id_and_verify():
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD + "x")
    assert not verify_password(None, PASSWORD)
    assert not verify_password("garbage", PASSWORD)
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


async def test_no_secret_reaches_the_logs(api_db, db_path, accounts, capfd):
    async with app_client(db_path, accounts=accounts, session_secret="topsecret" * 4) as c:
        await login(c, "alice", "my-wrong-password")
        r = await login(c, "alice", PASSWORD)
        session = r.cookies["kanade_session"]
        await c.get("/api/auth/me", headers={"Authorization": "Bearer leaked-token-value"})
    out = capfd.readouterr()
    logged = out.out + out.err
    assert "login_failed" in logged and "alice" in logged
    for secret in ("my-wrong-password", PASSWORD, "topsecret", session, "leaked-token-value"):
        assert secret not in logged


@pytest.mark.parametrize("hops, blocked_elsewhere", [(1, False), (0, True)])
async def test_behind_a_proxy_the_address_limit_applies_to_the_forwarded_client(
    api_db, db_path, accounts, hops, blocked_elsewhere
):
    # Every request comes from the proxy; only with proxy_hops does the limit see clients.
    async with app_client(db_path, accounts=accounts, proxy_hops=hops) as c:
        for i in range(30):
            answer = await c.post(
                "/api/auth/login",
                json={"username": f"user{i}", "password": "wrong-password"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            assert answer.status_code == 401
        other = await c.post(
            "/api/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.2"},
        )
        assert other.status_code == (429 if blocked_elsewhere else 200)


def test_only_the_entries_added_by_trusted_proxies_count():
    # The client can put anything on the left; each trusted proxy appends one entry.
    assert forwarded_client("6.6.6.6, 203.0.113.7", 1) == "203.0.113.7"
    assert forwarded_client("6.6.6.6, 203.0.113.7, 10.0.0.2", 2) == "203.0.113.7"
    assert forwarded_client("203.0.113.7", 2) is None
    assert forwarded_client("", 1) is None
