"""``projectord [run|migrate|dev|simulate] [--config PATH] [--db PATH]``.

Exit status: 0 after a clean run or stop, 1 when another projectord holds the
database or start-up fails, 2 for a bad command line or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import structlog

from .config import ConfigError, Settings, load_settings, redacted
from .database import create_writer_engine
from .garbage_collection import tune_for_batches
from .logconfig import configure_logging
from .migrations import upgrade_to_head
from .writer_lock import WriterLock, WriterLockHeld

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _options(default: object) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", default=default, help="TOML config file (or $KANADE_CONFIG)"
    )
    common.add_argument(
        "--db", metavar="PATH", default=default, help="database file (overrides the config)"
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="projectord",
        description="Project the kanade broker's streams into the SQLite database.",
        parents=[_options(None)],
    )
    # argparse copies a subcommand's defaults over the values parsed before it, so
    # the subcommands must not default these or `projectord --config F run` loses F.
    common = _options(argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="{run,migrate,dev,simulate}")
    sub.add_parser("run", parents=[common], help="run the projectors (the default)")
    sub.add_parser("migrate", parents=[common], help="upgrade the database to head and exit")
    dev = sub.add_parser(
        "dev",
        parents=[common],
        help="run the whole stack locally: broker, projectord, apiserver, simulated fleet",
    )
    dev.add_argument("--state-dir", default="var", metavar="DIR", help="default: ./var")
    dev.add_argument(
        "--nats-port", type=_port, default=4222, metavar="PORT", help="embedded broker (4222)"
    )
    dev.add_argument(
        "--nats-url",
        metavar="URL",
        help="use this broker instead of an embedded one; credentials from KANADE_NATS_*."
        " No simulated fleet or sample schedules unless --agents / --samples ask for them",
    )
    dev.add_argument(
        "--http-port", type=_port, default=8080, metavar="PORT", help="dashboard and API (8080)"
    )
    dev.add_argument(
        "--agents",
        type=_count,
        metavar="N",
        help="simulated PCs (default 300 on the embedded broker; 0 for none)",
    )
    dev.add_argument(
        "--samples",
        action=argparse.BooleanOptionalAction,
        help="add the sample jobs and schedules (default on the embedded broker)",
    )
    sim = sub.add_parser(
        "simulate", parents=[common], help="run simulated agents against the configured broker"
    )
    sim.add_argument("--agents", type=_positive, default=100, metavar="N", help="default: 100")
    sim.add_argument("--seed", type=int, default=1, help="fleet and traffic seed (default: 1)")
    sim.add_argument("--prefix", default="sim", help="PC id prefix (default: sim)")
    sim.add_argument(
        "--duration-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="scale of simulated run times, 0.2-2 s at 1.0 (default: 1.0)",
    )
    sim.add_argument(
        "--announce",
        action="store_true",
        help="every agent heartbeats at start (else spread over the first 30 s)",
    )
    sim.add_argument(
        "--no-assign-groups",
        action="store_true",
        help="do not write the agents' groups to KV agent_groups",
    )
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def load(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    return settings.with_db(args.db) if args.db else settings


def migrate(settings: Settings) -> int:
    log = structlog.get_logger("projectord")
    lock = WriterLock(settings.db_path)
    lock.acquire()
    engine = create_writer_engine(settings.db_path, settings.section("database")["busy_timeout_ms"])
    try:
        before, after = upgrade_to_head(engine)
    finally:
        engine.dispose()
        lock.release()
    log.info("migrated", db=str(settings.db_path), before=before, after=after)
    return EXIT_OK


def dev(args: argparse.Namespace) -> int:
    """``projectord dev``: the whole stack on loopback (see projectord.devstack)."""
    from .devstack.supervisor import DevOptions, run_dev

    if args.config:
        print(
            "projectord dev: --config is not used; the stack writes its own configuration to"
            f" {Path(args.state_dir) / 'kanade.toml'} on the first start (yours to edit)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # Sample schedules fire real Commands: never at a real fleet unless asked.
    embedded = args.nats_url is None
    agents = args.agents if args.agents is not None else (300 if embedded else 0)
    samples = args.samples if args.samples is not None else embedded
    options = DevOptions(
        state_dir=Path(args.state_dir),
        nats_port=args.nats_port,
        nats_url=args.nats_url,
        http_port=args.http_port,
        agents=agents,
        samples=samples,
        db=Path(args.db) if args.db else None,
    )
    return run_dev(options)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dev":
        return dev(args)
    try:
        settings = load(args)
    except ConfigError as exc:
        print(f"projectord: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.section("log")["format"], settings.section("log")["level"])
    log = structlog.get_logger("projectord")
    log.info(
        "config_loaded",
        source=settings.source,
        env_overrides=list(settings.env_used),
        config=redacted(settings),
    )
    try:
        if args.command == "migrate":
            return migrate(settings)
        if args.command == "simulate":
            from .simulator.fleet import make_fleet
            from .simulator.simulate import run_simulator

            fleet = make_fleet(args.agents, args.seed, args.prefix)
            return asyncio.run(
                run_simulator(
                    dict(settings.section("nats")),
                    fleet,
                    duration_scale=args.duration_scale,
                    assign_groups=not args.no_assign_groups,
                    announce=args.announce,
                )
            )
        from .daemon import Daemon

        tune_for_batches()
        return asyncio.run(Daemon(settings).run())
    except WriterLockHeld as exc:
        log.error("writer_lock_held", error=str(exc))
        print(f"projectord: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
