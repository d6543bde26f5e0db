"""`sorgw healthcheck`: GET /healthz of the gateway at its config's metrics.host and metrics.port (a container's
HEALTHCHECK); exit 0 when it answers 200, 1 otherwise."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from gateway import config
from gateway.status import local_url

DEFAULT_CONFIG = Path("config/gateway.yaml")
TIMEOUT_S = 4.0


def config_of_process(proc: Path = Path("/proc/1")) -> Path | None:
    """The config a `sorgw run` process runs (by default PID 1, a container's entrypoint): its --config, or run's
    default, taken relative to the process's working directory; None when that process is not `sorgw run` or
    cannot be read."""
    try:
        argv = [arg.decode() for arg in (proc / "cmdline").read_bytes().split(b"\0") if arg]
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError:
        return None
    if (
        "run" not in argv
        or argv.index("run") == 0
        or Path(argv[argv.index("run") - 1]).name not in ("sorgw", "gateway", "gateway.cli")
    ):
        return None  # `sorgw run`, `python -m gateway run` or `python -m gateway.cli run`
    path = DEFAULT_CONFIG
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = Path(argv[i + 1])
        elif arg.startswith("--config="):
            path = Path(arg.removeprefix("--config="))
    return path if path.is_absolute() else cwd / path


def command(args: argparse.Namespace) -> int:
    path = args.config or config_of_process() or DEFAULT_CONFIG
    metrics = config.load(path, config.GatewayConfig).metrics
    if not metrics.enabled:
        return _unhealthy(
            f"{path}: metrics.enabled is false, so there is no /healthz to read (turn the container's "
            f"health check off, or metrics on)"
        )
    if metrics.port == 0:
        return _unhealthy(f"{path}: metrics.port is 0 (any free port): give the endpoint a fixed port")
    url = local_url(metrics.host, metrics.port) + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body = response.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        return _unhealthy(f"{url}: HTTP {exc.code}: {exc.read().decode(errors='replace').strip()}")
    except (OSError, ValueError) as exc:
        return _unhealthy(f"{url}: {getattr(exc, 'reason', exc)}")
    print(f"{url}: {body or 'ok'}")
    return 0


def _unhealthy(message: str) -> int:
    print(f"sorgw healthcheck: {message}", file=sys.stderr)
    return 1
