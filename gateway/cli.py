"""The `sorgw` command: run the gateway or the venue simulators, the demo, simulations, the audit tools, TCA and
replay, status, the admin commands (halts), benchmarks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway import __version__, config, logs
from gateway.charts import ChartsUnavailable
from gateway.core.types import Strategy
from gateway.listen import PortInUse


def _iso_time(text: str) -> int:
    """--from/--to: nanoseconds since the epoch, or a usage error (exit 2) saying what a time looks like."""
    from gateway.audit.commands import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time: {text!r} (e.g. 2026-03-02, 2026-03-02T14:30:00 or 2026-03-02T14:30:00+01:00)"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sorgw", description="FIX smart-order-routing gateway.")
    parser.add_argument("--version", action="version", version=f"sorgw {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-json", action="store_true", help="log JSON lines instead of readable console lines")
    common.add_argument("--log-level", choices=sorted(logs.LEVELS), help="override logging.level from the config")
    common.add_argument(
        "--work-dir",
        type=Path,
        default=Path("var"),
        help="where FIX dictionaries, stores and logs are written (default: var)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the gateway: upstream acceptor, one initiator per venue")
    run.add_argument(
        "--config",
        type=Path,
        default=Path("config/gateway.yaml"),
        help="gateway config file (default: config/gateway.yaml)",
    )

    venue = sub.add_parser("venue", parents=[common], help="run the venue simulators (FIX acceptors)")
    venue.add_argument(
        "--config",
        type=Path,
        default=Path("config/venues.yaml"),
        help="venue simulator config file (default: config/venues.yaml)",
    )

    audit = sub.add_parser("audit", help="read the audit trail: show an order's story, verify the chain, export")
    audit.add_argument(
        "--config",
        type=Path,
        default=Path("config/gateway.yaml"),
        help="gateway config whose audit.url to read (default: config/gateway.yaml)",
    )
    audit.add_argument("--url", help="audit store url, instead of the config's audit.url")
    audit.add_argument("--table", help="PostgreSQL table, instead of the config's audit.table (default: audit)")
    audit.add_argument(
        "--key-env",
        metavar="VAR",
        help="environment variable holding the chain's HMAC key, instead of the config's audit.hmac_key_env",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    show = audit_sub.add_parser("show", help="the whole story of one parent order, in time order")
    show.add_argument("key", metavar="ORDER", help="an OrderID or any ClOrdID of the order")
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 naming the first bad record")
    verify.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a checkpoint file (audit.checkpoint_path): also find truncation and rewrites",
    )
    export = audit_sub.add_parser("export", help="write records as JSON lines or CSV to stdout")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--from", dest="start", type=_iso_time, help="ISO-8601 time, inclusive (UTC unless stated)")
    export.add_argument("--to", dest="end", type=_iso_time, help="ISO-8601 time, exclusive")

    tca = sub.add_parser("tca", help="transaction cost analysis of the orders on the audit trail, per order and venue")
    tca.add_argument(
        "--config",
        type=Path,
        default=Path("config/gateway.yaml"),
        help="gateway config whose audit.url to read (default: config/gateway.yaml)",
    )
    tca.add_argument("--audit-url", help="audit store url, instead of the config's audit.url")
    tca.add_argument("--table", help="PostgreSQL table, instead of the config's audit.table (default: audit)")
    tca.add_argument(
        "--from", dest="start", help="orders that arrived at or after this ISO-8601 time (UTC unless stated)"
    )
    tca.add_argument("--to", dest="end", help="orders that arrived before this ISO-8601 time")
    tca.add_argument("--session", help="orders from this OMS session only (as FIX.4.4:SORGW->OMS)")
    tca.add_argument("--symbol", help="orders in this symbol only")
    tca.add_argument("--order", help="one order: its OrderID or any of its ClOrdIDs")
    tca.add_argument(
        "--format",
        choices=["table", "csv", "json", "html"],
        default="table",
        help="html: one self-contained file with plots (needs --out FILE)",
    )
    tca.add_argument("--out", type=Path, help="write to this file (csv: this folder) instead of stdout")
    tca.add_argument(
        "--report",
        choices=["orders", "best-ex"],
        default="orders",
        help="best-ex: top five venues per class of order (MiFID II) and a Rule 606 style disclosure",
    )

    replay = sub.add_parser(
        "replay",
        help="work recorded parent orders again with another strategy, against the "
        "market they met; side by side with what happened",
    )
    replay.add_argument("order", nargs="?", help="the order: its OrderID or any of its ClOrdIDs")
    replay.add_argument(
        "--strategy",
        required=True,
        help="the routing strategy to replay with: "
        + ", ".join(s.value for s in Strategy)
        + " (with --all: several, comma-separated)",
    )
    replay.add_argument(
        "--policy-override",
        action="append",
        metavar="KEY=VALUE",
        help="a routing setting for the replay, e.g. dark_timeout_ms=500 or cost.toxicity_bps=2 (repeatable)",
    )
    replay.add_argument("--all", action="store_true", help="every parent that arrived in --from .. --to")
    replay.add_argument("--from", dest="start", help="with --all: orders that arrived at or after this ISO-8601 time")
    replay.add_argument("--to", dest="end", help="with --all: orders that arrived before this ISO-8601 time")
    replay.add_argument(
        "--config",
        type=Path,
        default=Path("config/gateway.yaml"),
        help="gateway config whose audit.url is read (default: config/gateway.yaml)",
    )
    replay.add_argument("--audit-url", help="audit store url, instead of the config's audit.url")
    replay.add_argument("--table", help="PostgreSQL table, instead of the config's audit.table (default: audit)")
    replay.add_argument("--format", choices=["table", "json"], default="table")

    status = sub.add_parser("status", help="read the gateway's /metrics and print sessions, orders, venues, latency")
    status.add_argument(
        "--url",
        help="the metrics endpoint; /metrics is appended to a bare http://HOST:PORT "
        "(default: from --config, else http://127.0.0.1:9464/metrics)",
    )
    status.add_argument(
        "--config",
        type=Path,
        help="gateway config whose metrics.host and metrics.port to read (default: config/gateway.yaml when it exists)",
    )
    status.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=2.0,
        metavar="SECONDS",
        help="clear the screen and redraw every SECONDS (default 2) until Ctrl-C",
    )
    status.add_argument(
        "--stale-after",
        type=float,
        metavar="SECONDS",
        help="flag a venue's quotes STALE when older (default: routing.max_quote_age_ms from "
        "--config, as the router judges them)",
    )

    healthcheck = sub.add_parser(
        "healthcheck",
        help="GET the gateway's /healthz at its config's metrics.host and "
        "metrics.port; exit 0 when it answers 200 (a container's "
        "HEALTHCHECK)",
    )
    healthcheck.add_argument(
        "--config",
        type=Path,
        help="gateway config to read (default: the --config of `sorgw "
        "run` when it is PID 1, as in a container; else "
        "config/gateway.yaml)",
    )

    admin = sub.add_parser("admin", help="halt or resume trading, list halts: through the gateway's admin endpoint")
    admin.add_argument(
        "--url", help="the admin endpoint, http://HOST:PORT (default: admin.host and admin.port from --config)"
    )
    admin.add_argument(
        "--config",
        type=Path,
        help="gateway config whose admin section to read (default: "
        "config/gateway.yaml when it exists); the token is read from "
        "the environment variable admin.token_env names",
    )
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    for action, what in (
        ("halt", "refuse new orders in the scope and cancel what works there (no scope: everything)"),
        ("resume", "lift the halt of exactly this scope"),
    ):
        scoped = admin_sub.add_parser(action, help=what)
        scoped.add_argument("--session", help="an OMS session: its CompID or its session id (FIX.4.4:SORGW->OMS)")
        scoped.add_argument("--symbol", help="a configured symbol")
        scoped.add_argument("--venue", help="a configured venue: out of routing, its children canceled")
    admin_sub.add_parser("halts", help="list the halts in force")

    bench = sub.add_parser("bench", help="benchmarks: router plan() latency, audit and metrics cost per order step")
    bench.add_argument("--router", action="store_true", help="time plan() (default when no part is named)")
    bench.add_argument(
        "--audit",
        nargs="?",
        const=True,
        default=False,
        metavar="STORE",
        help="alone: time engine steps with and without the audit commit; with --e2e: the gateway's "
        "audit store, sqlite (default), postgres (127.0.0.1:5432/test) or a postgresql:// URL",
    )
    bench.add_argument("--metrics", action="store_true", help="time engine steps with and without metric updates")
    bench.add_argument("--venues", type=int, help="router bench: lit venues (default 8); e2e: venues (default 3)")
    bench.add_argument("--levels", type=int, default=10, help="router bench: levels per side (default 10)")
    bench.add_argument("--iterations", type=int, default=20000, help="router bench: plan() calls (default 20000)")
    bench.add_argument("--steps", type=int, default=2000, help="audit and metrics benches: engine steps (default 2000)")
    bench.add_argument(
        "--soak",
        action="store_true",
        help="the gateway as a process under a steady order flow: its RSS after the warm-up and at the end",
    )
    bench.add_argument(
        "--rate",
        type=float,
        action="append",
        help="soak: orders per second (default 100); e2e: an offered rate, repeatable (default 500 and 1000)",
    )
    bench.add_argument(
        "--duration", type=float, help="soak: seconds (default 1800); e2e: seconds per offered rate (default 5)"
    )
    bench.add_argument(
        "--warmup", type=float, default=60.0, help="soak: seconds before the first RSS reading (default 60)"
    )
    bench.add_argument(
        "--mqtt",
        metavar="URL",
        help="soak, and e2e with --split above 1: carry venue books to the "
        "gateway over this broker (mqtt://HOST:PORT; e2e default "
        "mqtt://127.0.0.1:1883)",
    )
    bench.add_argument(
        "--e2e",
        action="store_true",
        help="OMS, gateway and venue as processes, against a do-nothing pass-through and the venue directly",
    )
    bench.add_argument(
        "--orders", type=int, default=1000, help="e2e: orders one at a time, and in the burst (default 1000)"
    )
    bench.add_argument(
        "--split",
        type=int,
        default=1,
        help="e2e: venues each order reaches: 1 (default) directed orders; more, a sweep over books carried by --mqtt",
    )
    bench.add_argument("--rounds", type=int, default=3, help="e2e: interleaved rounds (default 3)")
    bench.add_argument(
        "--store",
        choices=["file", "memory"],
        default="file",
        help="e2e: quickfix's message store on the gateway, pass-through and venue (default file, as shipped)",
    )
    bench.add_argument(
        "--log-level",
        choices=sorted(logs.LEVELS),
        default="info",
        help="e2e: the gateway's logging level (default info)",
    )
    bench.add_argument("--json", action="store_true", help="e2e: print the figures as JSON")

    simulate = sub.add_parser(
        "simulate",
        help="the router and engine against the matching cores, no sockets: "
        "Monte Carlo over scenarios, a table, CSV and a PNG",
    )
    simulate.add_argument(
        "--config",
        type=Path,
        default=Path("config/simulate.yaml"),
        help="scenarios to simulate (default: config/simulate.yaml)",
    )
    simulate.add_argument("--runs", type=int, help="runs per scenario and strategy (default: the config's)")
    simulate.add_argument("--seed", type=int, help="the seed every run's world derives from (default: the config's)")
    simulate.add_argument(
        "--out",
        type=Path,
        default=Path("var/simulate"),
        help="where the CSV files and the chart go (default: var/simulate)",
    )
    simulate.add_argument("--scenario", nargs="+", default=[], metavar="NAME", help="only these scenarios")
    simulate.add_argument(
        "--strategy",
        nargs="+",
        default=[],
        metavar="NAME",
        help="only these strategies (sweep, cost, dark, liquidity, single)",
    )

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="venues, gateway and a scripted OMS on 127.0.0.1; exit 0 when every expectation held",
    )
    demo.add_argument("--quiet", action="store_true", help="print only the per-order summary, not the log")
    return parser


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser of the command line's deepest subcommand, e.g. `sorgw audit export`'s."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():  # argparse keeps them private
        chosen = getattr(args, action.dest, None)
        if isinstance(action, argparse._SubParsersAction) and chosen in action.choices:
            return _innermost(action.choices[chosen], args)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the subcommand's usage, not the top level's
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command == "run":
            cfg = config.load(args.config, config.GatewayConfig)
            logs.configure(args.log_level or cfg.logging.level, args.log_json or cfg.logging.json_output)
            from gateway.app import run_gateway

            return run_gateway(cfg, args.work_dir)
        if args.command == "venue":
            cfg = config.load(args.config, config.VenuesConfig)
            logs.configure(args.log_level or cfg.logging.level, args.log_json or cfg.logging.json_output)
            from gateway.app import run_venues

            return run_venues(cfg, args.work_dir)
        if args.command == "audit":
            return _audit(args)
        if args.command == "tca":
            return _tca(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "status":
            from gateway.status import command as status_command

            return status_command(args)
        if args.command == "healthcheck":
            from gateway.healthcheck import command as healthcheck_command

            return healthcheck_command(args)
        if args.command == "admin":
            from gateway.admin_client import command as admin_command

            return admin_command(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "demo":
            level = args.log_level or ("warning" if args.quiet else "info")
            logs.configure(level, args.log_json)
            from gateway.demo import run_demo

            return run_demo(args.work_dir / "demo")
    except config.ConfigError as exc:
        print(f"sorgw: {exc}", file=sys.stderr)
        return 2
    except ChartsUnavailable as exc:
        print(f"sorgw {args.command}: {exc}", file=sys.stderr)
        return 2
    except PortInUse as exc:
        print(f"sorgw {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a start-up failure (port in use, unreadable store): say it plainly
        print(f"sorgw {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 2


def _bench(args) -> int:
    if args.venues is None:
        args.venues = 3 if args.e2e else 8
    for name in ("venues", "levels", "iterations", "steps", "orders", "rounds", "split"):
        if getattr(args, name) < 1:
            print(f"sorgw bench: --{name} must be at least 1", file=sys.stderr)
            return 2
    if any(rate <= 0 for rate in args.rate or ()) or args.duration is not None and args.duration <= 0:
        print("sorgw bench: --rate and --duration must be positive", file=sys.stderr)
        return 2
    if isinstance(args.audit, str) and not (
        args.e2e and (args.audit in ("sqlite", "postgres") or args.audit.startswith(("postgresql://", "postgres://")))
    ):
        print("sorgw bench: --audit STORE goes with --e2e: sqlite, postgres or a postgresql:// URL", file=sys.stderr)
        return 2
    if args.e2e and args.split > args.venues:
        print("sorgw bench: --split must be at most --venues", file=sys.stderr)
        return 2
    soak_rate = args.rate[-1] if args.rate else 100.0
    soak_duration = args.duration or 1800.0
    if args.soak and not 0 < args.warmup < soak_duration:
        print("sorgw bench: --soak needs 0 < --warmup < --duration", file=sys.stderr)
        return 2
    if args.router or not (args.audit is True or args.metrics or args.soak or args.e2e):
        from gateway.bench import main_router

        main_router(args)
    if args.audit is True:
        from gateway.audit.bench import audit_bench, print_report as print_audit

        print_audit(audit_bench(args.steps))
    if args.metrics:
        from gateway.metrics_bench import metrics_bench, print_report as print_metrics

        print_metrics(metrics_bench(args.steps))
    if args.soak:
        from gateway.soak import print_progress, print_report as print_soak, run_soak

        logs.configure("warning", False)
        result = run_soak(soak_rate, soak_duration, args.warmup, mqtt_url=args.mqtt, progress=print_progress)
        if not print_soak(result):
            return 1
    if args.e2e:
        return _e2e(args)
    return 0


def _e2e(args) -> int:
    import json

    from gateway.e2e import bench as e2e
    from gateway.e2e.report import print_report

    opts = e2e.Options(
        venues=args.venues,
        split=args.split,
        mqtt=args.mqtt or e2e.Options.mqtt,
        audit=args.audit if isinstance(args.audit, str) else "sqlite",
        store=args.store,
        log_level=args.log_level,
        rates=tuple(args.rate or (500.0, 1000.0)),
        duration=args.duration or 5.0,
        orders=args.orders,
        rounds=args.rounds,
    )
    try:
        result = e2e.run(opts)
    except e2e.BenchError as exc:
        print(f"sorgw bench --e2e: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


def _simulate(args) -> int:
    from gateway.charts import pyplot
    from gateway.simulation import report, runner, scenarios
    from gateway.simulation.progress import Progress

    if args.runs is not None and args.runs < 1:
        print("sorgw simulate: --runs must be at least 1", file=sys.stderr)
        return 2
    pyplot()  # the chart is written after the runs: without matplotlib, say so before them
    cfg = scenarios.load(args.config)
    seed = cfg.seed if args.seed is None else args.seed
    try:
        work = runner.plan(cfg, args.scenario, args.strategy, args.runs)
        progress = Progress(sum(len(strategies) * runs for _, strategies, runs in work))
        try:
            results = runner.simulate(cfg, work, seed, progress)
        finally:
            progress.close()
    except scenarios.SimulationError as exc:
        print(f"sorgw simulate: {exc}", file=sys.stderr)
        return 2
    summaries = report.summarise(results)
    report.print_table(summaries, results.dark_studies, seed, sys.stdout)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = [
        *report.write_csvs(results, summaries, args.out),
        report.write_chart(summaries, args.out / "chart.png", results.dark_studies, seed),
    ]
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0


def _audit(args) -> int:
    from gateway.audit import commands
    from gateway.audit.stores import open_store

    if args.url:
        url, table, key_env = args.url, args.table or "audit", args.key_env
    else:
        audit = config.load(args.config, config.GatewayConfig).audit
        url, table, key_env = audit.url, args.table or audit.table, args.key_env or audit.hmac_key_env
    key = config.AuditConfig(hmac_key_env=key_env).key(os.environ) if args.audit_command == "verify" else None
    if args.audit_command == "verify" and args.checkpoint is not None and key is None:
        print("sorgw audit verify: --checkpoint needs the audit key (audit.hmac_key_env or --key-env)", file=sys.stderr)
        return 2
    store = open_store(url, table)
    if url.startswith("sqlite:///") and not store.path.exists():
        print(f"sorgw audit: no audit trail at {store.path}", file=sys.stderr)
        return 1
    store.open()
    try:
        if args.audit_command == "show":
            return commands.show(store, args.key)
        if args.audit_command == "verify":
            return commands.verify(store, key, args.checkpoint)
        return commands.export(store, args.format, args.start, args.end)
    finally:
        store.close()


def _trail_url(args) -> tuple[str, str]:
    """The audit store (url, table) --audit-url and --table name, else the config's."""
    if args.audit_url:
        return args.audit_url, args.table or "audit"
    audit = config.load(args.config, config.GatewayConfig).audit
    return audit.url, args.table or audit.table


def _tca(args) -> int:
    from gateway.tca.report import TcaError, command

    try:
        return command(*_trail_url(args), args)
    except (TcaError, ValueError) as exc:
        print(f"sorgw tca: {exc}", file=sys.stderr)
        return 1


def _replay(args) -> int:
    from gateway.replay.report import command
    from gateway.replay.trail import ReplayError

    try:
        return command(*_trail_url(args), args)
    except (ReplayError, ValueError) as exc:
        print(f"sorgw replay: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
