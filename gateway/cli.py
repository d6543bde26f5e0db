"""The `sorgw` command: run the gateway, run the venue simulators, or run the end-to-end demo."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway import __version__, config, logs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sorgw", description="FIX smart-order-routing gateway.")
    parser.add_argument("--version", action="version", version=f"sorgw {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-json", action="store_true", help="log JSON lines instead of readable console lines")
    common.add_argument("--log-level", choices=sorted(logs.LEVELS), help="override logging.level from the config")
    common.add_argument("--work-dir", type=Path, default=Path("var"),
                        help="where FIX dictionaries, stores and logs are written (default: var)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the gateway: upstream acceptor, one initiator per venue")
    run.add_argument("--config", type=Path, default=Path("config/gateway.yaml"),
                     help="gateway config file (default: config/gateway.yaml)")

    venue = sub.add_parser("venue", parents=[common], help="run the venue simulators (FIX acceptors)")
    venue.add_argument("--config", type=Path, default=Path("config/venues.yaml"),
                       help="venue simulator config file (default: config/venues.yaml)")

    demo = sub.add_parser("demo", parents=[common],
                          help="venues, gateway and a scripted OMS on 127.0.0.1; exit 0 when every expectation held")
    demo.add_argument("--quiet", action="store_true", help="print only the per-order summary, not the log")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        if args.command == "demo":
            level = args.log_level or ("warning" if args.quiet else "info")
            logs.configure(level, args.log_json)
            from gateway.demo import run_demo
            return run_demo(args.work_dir / "demo")
    except config.ConfigError as exc:
        print(f"sorgw: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a start-up failure (port in use, unreadable store): say it plainly
        print(f"sorgw {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
