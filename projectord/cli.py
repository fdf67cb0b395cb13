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
        "dev", parents=[common], help="run with an embedded nats-server, state under ./var"
    )
    dev.add_argument("--state-dir", default="var", metavar="DIR", help="default: ./var")
    dev.add_argument("--nats-port", type=int, default=4222, metavar="PORT", help="default: 4222")
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
        "--no-assign-groups",
        action="store_true",
        help="do not write the agents' groups to KV agent_groups",
    )
    return parser


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        if args.command == "dev":
            from .devstack import EmbeddedBrokerError, run_dev

            try:
                return run_dev(settings, Path(args.state_dir), args.nats_port)
            except EmbeddedBrokerError as exc:
                print(f"projectord dev: {exc}", file=sys.stderr)
                return EXIT_FAILURE
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
                )
            )
        from .daemon import Daemon

        return asyncio.run(Daemon(settings).run())
    except WriterLockHeld as exc:
        log.error("writer_lock_held", error=str(exc))
        print(f"projectord: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
