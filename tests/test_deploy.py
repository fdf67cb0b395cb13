"""deploy/: the systemd units, the users and directories they expect, the broker config.

The units are checked by systemd-analyze and for the hardening they claim. Then
projectord and apiserver run as two other users with the owners, modes, group and
umasks that the units and the sysusers/tmpfiles snippets give them (the suite runs
as root in CI): apiserver must serve fresh data while projectord writes, and its
user must be unable to write the database files or create a file beside them.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
import pytest
from harness import (
    NatsServer,
    apiserver_cmd,
    connect,
    free_port,
    nats_server_binary,
    projectord_cmd,
    wait_http_ok,
    wait_until,
)
from wire import body, exec_result

from apiserver.auth.identity import token_sha256
from apiserver.config import API_ENV_OVERRIDES
from projectord.broker_resources import ensure_resources
from projectord.config import ENV_OVERRIDES, SCHEMA, load_settings

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UNITS = ("projectord.service", "apiserver.service")
INSTALLED_VENV = "/opt/kanade/.venv"
CONFIG_PATH = "/etc/kanade/kanade.toml"
# Stand-ins for the users and group of kanade.sysusers.conf: ids no real account has.
UIDS = {"kanade-projectord": 64000, "kanade-api": 64001}
KANADE_GID = 64100
TOKEN = "deploy-test-token-0123456789abcdef"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: runs projectord and apiserver as other users with the units' "
    "owners and modes (CI runs the suite as root)",
)

HARDENING = {
    "Type": "exec",
    "Group": "kanade",
    "Restart": "on-failure",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
}


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A shipped unit's settings by section and key; a repeated key keeps every value."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (DEPLOY / name).read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(name: str) -> dict[str, list[str]]:
    return unit(name)["Service"]


def seconds(value: str) -> float:
    """A systemd time span as the units write it: ``20`` or ``20s``."""
    match = re.fullmatch(r"(\d+)s?", value)
    assert match, f"unexpected time span {value!r}"
    return float(match.group(1))


def env_names(path: Path) -> set[str]:
    """Variables an environment file sets or shows (commented out) as a template."""
    return set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text()))


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: scripts/test.sh installs the systemd package"
    return found


def test_units_pass_systemd_analyze_verify(tmp_path):
    # verify wants ExecStart= to exist: the shipped units with the install prefix of
    # the binaries moved to this checkout's virtualenv, nothing else changed.
    venv_bin = Path(sys.prefix) / "bin"
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        moved = text.replace(f"ExecStart={INSTALLED_VENV}/bin/", f"ExecStart={venv_bin}/")
        assert moved.count(f"ExecStart={venv_bin}/") == 1, name
        (tmp_path / name).write_text(moved)
    done = subprocess.run(
        [tool("systemd-analyze"), "verify", "--man=no", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and unparsable values are only warnings to verify: none is allowed.
    about_ours = [
        line for line in (done.stdout + done.stderr).splitlines() if any(n in line for n in UNITS)
    ]
    assert done.returncode == 0 and not about_ours, done.stdout + done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(name):
    settings = service(name)
    for key, value in HARDENING.items():
        assert settings.get(key) == [value], (key, settings.get(key))
    assert settings["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    # Exit status 2 is a configuration error: a restart loop would not fix it.
    assert "2" in settings["RestartPreventExitStatus"][0].split()
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    program, *args = shlex.split(settings["ExecStart"][0])
    assert Path(program).parent == Path(INSTALLED_VENV) / "bin"
    assert Path(program).name == name.removesuffix(".service")
    assert Path(program).name in scripts
    assert args[-2:] == ["--config", CONFIG_PATH]


def test_only_projectord_can_write_the_database_directory():
    writer, reader = service("projectord.service"), service("apiserver.service")
    assert writer["User"] == ["kanade-projectord"] and reader["User"] == ["kanade-api"]
    assert writer["StateDirectory"] == ["kanade"] and writer["StateDirectoryMode"] == ["0750"]
    # SQLite creates the database (and gives -wal and -shm its mode) as 0644 less the
    # umask: readable by the group, writable by projectord alone.
    assert 0o644 & ~int(writer["UMask"][0], 8) == 0o640
    # apiserver has no writable directory of its own, and must not name projectord's.
    writable = ("StateDirectory", "ReadWritePaths", "CacheDirectory", "LogsDirectory")
    assert not [key for key in writable if key in reader]
    # The example configuration keeps the database in projectord's state directory.
    example = load_settings(DEPLOY / "kanade.example.toml", {})
    db_dir = Path(example.values["database"]["path"]).parent
    assert db_dir == Path("/var/lib") / writer["StateDirectory"][0]


def test_projectord_gets_more_than_its_graceful_stop_before_sigkill():
    settings = service("projectord.service")
    budget = next(k.default for k in SCHEMA["projectord"] if k.name == "stop_timeout_s")
    # After the budget come the final ack flush (up to 2 s), closing the file, the exit.
    assert seconds(settings["TimeoutStopSec"][0]) >= budget + 5
    assert settings["KillSignal"] == ["SIGTERM"]
    # apiserver's parent stops its workers and throttle process itself.
    assert service("apiserver.service")["KillMode"] == ["mixed"]


def test_only_projectord_gets_broker_credentials():
    writer, reader = service("projectord.service"), service("apiserver.service")
    assert writer["EnvironmentFile"] == ["-/etc/kanade/projectord.env"]
    assert reader["EnvironmentFile"] == ["-/etc/kanade/apiserver.env"]
    assert "Environment" not in reader
    api_vars = env_names(DEPLOY / "apiserver.env.example")
    assert api_vars == {"KANADE_API_SESSION_SECRET"} and api_vars <= set(API_ENV_OVERRIDES)
    writer_vars = env_names(DEPLOY / "projectord.env.example")
    assert {v for v in ENV_OVERRIDES if v.startswith("KANADE_NATS_")} <= writer_vars


def passwd_ids(root: Path) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """(uid, gid) by user and gid by group, from ``root``'s passwd and group files."""
    users = {}
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        users[name] = (int(uid), int(gid))
    groups = {}
    for line in (root / "etc/group").read_text().splitlines():
        name, _, gid, *_ = line.split(":")
        groups[name] = int(gid)
    return users, groups


def owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def tmpfiles(root: Path) -> None:
    """Apply kanade.tmpfiles.conf to the tree under ``root`` (names from its etc/passwd)."""
    snippet = str(DEPLOY / "kanade.tmpfiles.conf")
    done = subprocess.run(
        [tool("systemd-tmpfiles"), f"--root={root}", "--create", snippet],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@needs_root
def test_sysusers_and_tmpfiles_snippets_give_what_the_units_expect(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    sysusers = [tool("systemd-sysusers"), f"--root={root}", str(DEPLOY / "kanade.sysusers.conf")]
    subprocess.run(sysusers, check=True, capture_output=True, timeout=60)
    users, groups = passwd_ids(root)
    kanade = groups["kanade"]
    writer, reader = (service(n)["User"][0] for n in UNITS)
    assert users[writer][1] == users[reader][1] == kanade
    assert users[writer][0] != users[reader][0]

    tmpfiles(root)
    state = root / "var/lib" / service("projectord.service")["StateDirectory"][0]
    mode = int(service("projectord.service")["StateDirectoryMode"][0], 8)
    assert owner_mode(state) == (users[writer][0], kanade, mode)
    assert owner_mode(root / "etc/kanade") == (0, kanade, 0o750)

    # Configuration files copied in by root get the modes the units expect.
    for path in (root / "etc/kanade/kanade.toml", root / "etc/kanade/projectord.env"):
        path.write_text("")
        path.chmod(0o644)
    tmpfiles(root)
    assert owner_mode(root / "etc/kanade/kanade.toml") == (0, kanade, 0o640)
    assert owner_mode(root / "etc/kanade/projectord.env") == (0, 0, 0o600)


async def test_example_broker_config_serves_the_backends_jetstream(tmp_path):
    text = (DEPLOY / "nats-server.example.conf").read_text()
    token = re.search(r'(?m)^\s*token:\s*"([^"]+)"', text).group(1)
    # The store goes to a temp dir; address and monitor port are overridden by flags.
    text, count = re.subn(r"(?m)^(\s*store_dir:\s*).*$", rf"\g<1>{tmp_path / 'store'}", text)
    assert count == 1
    (tmp_path / "nats.conf").write_text(text)
    port, monitor = free_port(), free_port()
    log = open(tmp_path / "nats.log", "wb")  # noqa: SIM115
    args = ["-c", str(tmp_path / "nats.conf"), "-a", "127.0.0.1", "-p", str(port)]
    broker = subprocess.Popen(
        [nats_server_binary(), *args, "-m", str(monitor)], stdout=log, stderr=log
    )
    url = f"nats://127.0.0.1:{port}"
    try:
        wait_http_ok(f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true", broker)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=2)
        nc = await nats.connect(url, token=token, allow_reconnect=False)
        try:
            # Everything projectord creates at start fits the configured store.
            outcome = await ensure_resources(nc.jetstream())
            assert set(outcome.values()) == {"created"}, outcome
        finally:
            await nc.close()
    finally:
        broker.terminate()
        broker.wait(10)
        log.close()


# --- the services as their own users ------------------------------------------------


def closed_directories(paths: list[Path]) -> dict[Path, set[str]]:
    """Directories other users cannot enter on the way to ``paths``, and the entries needed.

    Python may live where the service users cannot reach it (pyenv under root's 0700
    home); :func:`as_user` then opens a way through in a private mount namespace.
    """
    closed: dict[Path, set[str]] = {}
    for path in paths:
        parts = path.resolve().parts
        shut = [i for i in range(1, len(parts)) if not Path(*parts[:i]).stat().st_mode & 0o001]
        assert len(shut) <= 1, f"{path}: more than one directory on the way is closed to others"
        for i in shut:
            closed.setdefault(Path(*parts[:i]), set()).add(parts[i])
    return closed


def as_user(
    user: str,
    umask: int,
    argv: list[str],
    mounts: Path,
    read_only: tuple[Path, ...] = (),
    writable: tuple[Path, ...] = (),
) -> list[str]:
    """``argv`` as ``user`` the way its unit runs it: the user's uid, group kanade and
    no other, the unit's umask, no capabilities, no new privileges.

    ``read_only`` directories are mounted read-only for the command, apart from the
    ``writable`` ones inside, as ProtectSystem=strict (and StateDirectory=) show the
    file system to the service. If Python sits behind a directory closed to other
    users (pyenv under root's 0700 home), that directory is covered with an open tmpfs
    into which only the entries needed are bound back (saved under ``mounts`` first).
    Both happen in a private mount namespace: the host is not changed, and neither
    are the owners and modes under test.
    """
    uid, gid = UIDS[user], KANADE_GID
    steps = []
    closed = closed_directories([Path(sys.base_prefix), Path(sys.prefix), REPO])
    for i, (directory, names) in enumerate(sorted(closed.items())):
        saved = mounts / str(i)
        saved.mkdir(parents=True, exist_ok=True)
        steps += [
            f"mount --bind {shlex.quote(str(directory))} {shlex.quote(str(saved))}",
            f"mount -t tmpfs -o mode=0755 kanade-test {shlex.quote(str(directory))}",
        ]
        for name in sorted(names):
            target = shlex.quote(str(directory / name))
            make = "mkdir -m 0755" if (directory / name).is_dir() else "touch"
            steps += [f"{make} {target}", f"mount --bind {shlex.quote(str(saved / name))} {target}"]
    for directory in read_only:
        quoted = shlex.quote(str(directory))
        steps += [f"mount --bind {quoted} {quoted}", f"mount -o remount,bind,ro {quoted}"]
    for directory in writable:
        quoted = shlex.quote(str(directory))
        steps += [f"mount --bind {quoted} {quoted}", f"mount -o remount,bind,rw {quoted}"]
    steps += [
        f"umask {umask:04o}",
        f"exec setpriv --reuid={uid} --regid={gid} --groups={gid} --inh-caps=-all "
        f"--bounding-set=-all --no-new-privs -- {shlex.join(argv)}",
    ]
    private = closed or read_only or writable
    namespace = ["unshare", "--mount", "--propagation", "private"] if private else []
    return [*namespace, "sh", "-ec", "\n".join(steps)]


def service_env(**extra: str) -> dict[str, str]:
    # A clean environment, as systemd gives: nothing of the test's (KANADE_*) leaks in.
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": path, "HOME": "/", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **extra}


def umask_of(name: str) -> int:
    return int(service(name).get("UMask", ["0022"])[0], 8)


@pytest.fixture
def host() -> Iterator[Path]:
    """A stand-in for the host's root directory, with the service users' names.

    Not pytest's tmp_path: that is private to root, and the service users must reach
    what is inside, as they reach /etc and /var/lib on a host.
    """
    root = Path(tempfile.mkdtemp(prefix="kanade-deploy-"))
    root.chmod(0o755)
    (root / "etc").mkdir()
    users = "".join(
        f"{name}:x:{uid}:{KANADE_GID}::/:/usr/sbin/nologin\n" for name, uid in UIDS.items()
    )
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n" + users)
    (root / "etc/group").write_text(f"root:x:0:\nkanade:x:{KANADE_GID}:\n")
    yield root
    # The binds of as_user live only in the services' mount namespaces; were one
    # visible here, removing the tree would reach into the bound directory.
    saved = [p for p in (root / "mounts").glob("*") if os.path.ismount(p)]
    assert not saved, f"bind mounts leaked into the host's namespace: {saved}"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def services() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Service processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def write_config(host: Path, api_port: int) -> Path:
    """/etc/kanade/kanade.toml for both services: one database, one service token."""
    tmpfiles(host)
    config = host / CONFIG_PATH.lstrip("/")
    config.write_text(
        f'[database]\npath = "{host / "var/lib/kanade/backend.db"}"\n'
        '[log]\nformat = "json"\n'
        "[projectord]\nstatus_interval_s = 0.5\n"
        "[housekeeping]\nenabled = false\n"
        "[scheduler]\nenabled = false\n"
        f'[apiserver]\nbind = "127.0.0.1:{api_port}"\nworkers = 2\n'
        f'[apiserver.tokens.deploy-test]\nsha256 = "{token_sha256(TOKEN)}"\nrole = "viewer"\n'
    )
    tmpfiles(host)  # its z line gives the file the mode the units expect
    return config


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def reached(client: httpx.AsyncClient, projector: str, seq: int) -> bool:
    """Whether apiserver reports ``projector``'s checkpoint at ``seq`` or beyond."""
    status = (await client.get("/api/projector/status")).json()
    entry = next((p for p in status["projectors"] if p["projector"] == projector), {})
    return (entry.get("checkpoint") or 0) >= seq


@needs_root
async def test_apiserver_serves_with_the_units_permissions_while_projectord_writes(
    host, nats_server: NatsServer, tmp_path, services
):
    api_port = free_port()
    config = write_config(host, api_port)
    state = host / "var/lib/kanade"
    db = state / "backend.db"
    mounts = host / "mounts"

    def start(unit_name: str, argv: list[str], log: Path, **options: Any) -> Any:
        """The unit's program as its user, logging to ``log``; ``options`` as as_user's
        plus ``env``, what its environment file would give."""
        user = service(unit_name)["User"][0]
        env = service_env(**options.pop("env", {}))
        command = as_user(user, umask_of(unit_name), argv, mounts, **options)
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        services.append(proc)
        return proc

    writer_log, api_log = tmp_path / "projectord.log", tmp_path / "apiserver.log"
    # ProtectSystem=strict with StateDirectory=: of the host, only the database
    # directory is writable for projectord; read-only for apiserver, on top of the
    # modes that keep its user from writing there.
    projectord = start(
        "projectord.service",
        projectord_cmd("run", "--config", str(config)),
        writer_log,
        env={"KANADE_NATS_URL": nats_server.url},
        read_only=(host,),
        writable=(state,),
    )

    def running() -> bool:
        assert projectord.poll() is None, f"projectord exited:\n{log_text(writer_log)[-3000:]}"
        return '"projectord_running"' in log_text(writer_log)

    await wait_until(running, timeout=60)
    apiserver = start(
        "apiserver.service",
        apiserver_cmd("serve", "--config", str(config)),
        api_log,
        read_only=(host,),
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_http_ok(f"{base}/health", apiserver, timeout=60)
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n{log_text(api_log)[-3000:]}") from None

    nc = await connect(nats_server)
    js = nc.jetstream()
    statuses: list[int] = []
    done = asyncio.Event()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:

        async def read_constantly() -> None:
            while not done.is_set():
                for path in ("/api/results?limit=200", "/api/projector/status"):
                    statuses.append((await client.get(path)).status_code)

        reader = asyncio.create_task(read_constantly())
        sent = 0
        for _ in range(5):
            batch = range(sent, sent + 200)
            acks = await asyncio.gather(
                *(
                    js.publish(
                        f"results.req-{i}",
                        body(exec_result(f"r-{i:05d}", request_id=f"req-{i}", stdout=f"out {i}\n")),
                    )
                    for i in batch
                )
            )
            sent += len(batch)
            # Each commit of projectord's becomes visible through apiserver's read-only
            # view of the WAL index.
            last_seq = acks[-1].seq
            await wait_until(lambda s=last_seq: reached(client, "results", s), timeout=30)
            newest = await client.get(f"/api/results/r-{sent - 1:05d}")
            assert newest.status_code == 200, newest.text
            assert newest.json()["stdout"] == f"out {sent - 1}\n"
        done.set()
        await reader
        page = await client.get("/api/results?limit=1000")
        assert page.status_code == 200 and len(page.json()) == 1000

        async def ready() -> bool:
            return (await client.get("/api/health/ready")).status_code == 200

        await wait_until(ready, timeout=30)  # readable, schema at head, fresh snapshot
    await nc.close()
    assert statuses and set(statuses) == {200}, sorted(set(statuses))

    # apiserver ran as its user and holds the database, its WAL and the WAL index
    # open read-only: SQLite's read-only-shm mode, as the design expects.
    server = psutil.Process(apiserver.pid)
    processes = [server, *server.children()]
    assert {(p.uids().real, p.gids().real) for p in processes} == {(UIDS["kanade-api"], KANADE_GID)}
    opened = [f for p in processes for f in p.open_files() if Path(f.path).parent == state]
    assert {Path(f.path).name for f in opened} == {"backend.db", "backend.db-wal", "backend.db-shm"}
    assert {f.mode for f in opened} == {"r"}, opened

    # Every file in the database directory is projectord's, readable by the group only;
    # apiserver left nothing there (it could not have).
    assert owner_mode(state) == (UIDS["kanade-projectord"], KANADE_GID, 0o750)
    names = {"backend.db", "backend.db-wal", "backend.db-shm", "backend.db.lock"}
    assert {p.name for p in state.iterdir()} == names
    for path in state.iterdir():
        assert owner_mode(path) == (UIDS["kanade-projectord"], KANADE_GID, 0o640), path

    unit_of = {service(name)["User"][0]: name for name in UNITS}

    def attempt(user: str, *argv: str) -> subprocess.CompletedProcess[bytes]:
        """``argv`` as ``user``, with only the file modes in the way (no read-only mounts)."""
        command = as_user(user, umask_of(unit_of[user]), list(argv), mounts)
        return subprocess.run(command, env=service_env(), capture_output=True, timeout=30)

    append = 'printf x >> "$1"'
    for path in (db, state / "backend.db-wal", state / "backend.db-shm"):
        denied = attempt("kanade-api", "sh", "-c", append, "sh", str(path))
        assert denied.returncode != 0 and b"Permission denied" in denied.stderr, path
    stray = state / "written-by-apiserver"
    denied = attempt("kanade-api", "sh", "-c", ': > "$1"', "sh", str(stray))
    assert denied.returncode != 0 and b"Permission denied" in denied.stderr
    assert not stray.exists()
    readable = attempt("kanade-api", "head", "-c", "16", str(db))
    assert readable.returncode == 0 and readable.stdout == b"SQLite format 3\x00"
    # The same attempt succeeds for projectord's user: the refusals above are the modes'.
    allowed = attempt("kanade-projectord", "sh", "-c", ': > "$1" && rm "$1"', "sh", str(stray))
    assert allowed.returncode == 0, allowed.stderr

    for proc in (apiserver, projectord):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
