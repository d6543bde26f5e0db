"""docker-compose.yml and the Dockerfile agree with the CLI, the config files, Prometheus and each other."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway import config
from gateway.cli import _parser
from gateway.endpoint import Endpoint

ROOT = Path(__file__).resolve().parents[2]
RESTARTING = ("unless-stopped", "always")
MODELS: dict[str, type[config.Model]] = {"run": config.GatewayConfig, "venue": config.VenuesConfig}
Compose = dict[str, Any]
SORGW = [sys.executable, "-m", "gateway.cli"]


def load_compose(root: Path) -> Compose:
    return yaml.safe_load((root / "docker-compose.yml").read_text())


def ours(compose: Compose) -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile (the `sorgw` entrypoint)."""

    def from_dockerfile(build: Any) -> bool:
        return build == "." or isinstance(build, dict) and build.get("context") == "." and "dockerfile" not in build

    return {name: svc for name, svc in compose["services"].items() if from_dockerfile(svc.get("build"))}


def parse_command(service: dict[str, Any]) -> argparse.Namespace:
    """The service's command as `sorgw` parses it; ValueError with argparse's complaint if it does not."""
    command = service.get("command", [])
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    try:
        return _parser().parse_args(args)
    except SystemExit:
        raise ValueError(f"`sorgw {' '.join(args)}` is not a valid sorgw command") from None


def service_running(compose: Compose, subcommand: str) -> str:
    names = [name for name, svc in ours(compose).items() if parse_command(svc).command == subcommand]
    assert len(names) == 1, f"expected one service running `sorgw {subcommand}`, found {names}"
    return names[0]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """The service's environment; None marks a variable passed through from the shell running compose."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: None if v is None else str(v) for k, v in env.items()}


def postgres_url(compose: Compose) -> str:
    """The audit URL the postgres profile is documented with, built from the postgres service's own settings."""
    env = environment(compose["services"]["postgres"])
    return f"postgresql://{env['POSTGRES_USER']}@postgres:5432/{env['POSTGRES_DB']}"


def effective_config(compose: Compose, name: str, root: Path, shell: dict[str, str] | None = None) -> Any:
    """The config the service's process loads: its --config file with the container's SORGW__ variables applied."""
    service = compose["services"][name]
    args = parse_command(service)
    shell = shell or {}
    env = {
        k: shell.get(k) if v is None else v for k, v in environment(service).items() if k.startswith(config.ENV_PREFIX)
    }
    return config.load(root / args.config, MODELS[args.command], {k: v for k, v in env.items() if v is not None})


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from the short `ports` syntax."""
    result = {}
    for entry in service.get("ports", []):
        host, container = str(entry).rsplit(":", 2)[-2:]
        result[int(container.split("/")[0])] = int(host)
    return result


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume in the short `src:dst[:mode]` or the long syntax."""
    result = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            result.append((entry["source"], entry["target"]))
        else:
            source, target = entry.split(":")[:2]
            result.append((source, target))
    return result


def mount_problems(compose: Compose, root: Path) -> list[str]:
    problems = []
    named = compose.get("volumes") or {}
    for name, service in compose["services"].items():
        for source, target in mounts(service):
            if source.startswith((".", "/")):
                if not (root / source).exists():
                    problems.append(f"{name}: bind mount {source} does not exist in the repository")
            elif source not in named:
                problems.append(f"{name}: volume {source} for {target} is not declared under volumes")
    return problems


def command_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in ours(compose).items():
        try:
            parse_command(service)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def env_problems(compose: Compose, root: Path) -> list[str]:
    problems = []
    for name, service in ours(compose).items():
        variants = [{}]
        if environment(service).get("SORGW__AUDIT__URL", "") is None:
            variants.append({"SORGW__AUDIT__URL": postgres_url(compose)})
        for shell in variants:
            try:
                effective_config(compose, name, root, shell)
            except config.ConfigError as exc:
                problems.append(f"{name} with {shell}: {exc}" if shell else f"{name}: {exc}")
    return problems


def port_problems(compose: Compose, root: Path) -> list[str]:
    problems = []
    gateway_name, venues_name = service_running(compose, "run"), service_running(compose, "venue")
    gateway = effective_config(compose, gateway_name, root)
    venues = effective_config(compose, venues_name, root)
    ports = published(compose["services"][gateway_name])
    for what, port in (("upstream.port", gateway.upstream.port), ("metrics.port", gateway.metrics.port)):
        if ports.get(port) != port:
            problems.append(f"{gateway_name}: {what} {port} is not published as {port}:{port} ({ports})")
    for what, host in (("upstream.host", gateway.upstream.host), ("metrics.host", gateway.metrics.host)):
        if host != "0.0.0.0":
            problems.append(f"{gateway_name}: {what} is {host}, unreachable from outside the container")
    if not gateway.metrics.enabled:
        problems.append(f"{gateway_name}: metrics.enabled is false: no /metrics, and the HEALTHCHECK fails")

    served = {v.name: v for v in venues.venues}
    exposed = {int(p) for p in compose["services"][venues_name].get("expose", [])}
    for venue in served.values():
        if venue.host != "0.0.0.0":
            problems.append(f"{venues_name}: venue {venue.name} listens on {venue.host}, not 0.0.0.0")
        if venue.port not in exposed:
            problems.append(f"{venues_name}: venue {venue.name}'s port {venue.port} is not exposed")
    for venue in gateway.venues:
        if venue.name not in served:
            problems.append(f"{gateway_name}: venue {venue.name} is not simulated by {venues_name}")
        elif (venue.host, venue.port) != (venues_name, served[venue.name].port):
            problems.append(
                f"{gateway_name}: venue {venue.name} connects to {venue.host}:{venue.port}, "
                f"{venues_name} serves it on {venues_name}:{served[venue.name].port}"
            )
    for name, cfg in ((gateway_name, gateway), (venues_name, venues)):
        broker = cfg.mqtt.url and cfg.mqtt.url.removeprefix("mqtt://").split(":")[0]
        if broker and broker not in compose["services"]:
            problems.append(f"{name}: mqtt.url {cfg.mqtt.url} names no compose service")
    return problems


def prometheus_problems(compose: Compose, root: Path) -> list[str]:
    """The scrape targets reach the gateway's metrics port, and every rule file is mounted next to the config."""
    problems = []
    gateway_name = service_running(compose, "run")
    metrics_port = effective_config(compose, gateway_name, root).metrics.port
    files = {PurePosixPath(target): root / source for source, target in mounts(compose["services"]["prometheus"])}
    config_target = PurePosixPath("/etc/prometheus/prometheus.yml")
    if config_target not in files:
        return [f"prometheus: nothing is mounted on {config_target}"]
    prometheus = yaml.safe_load(files[config_target].read_text())
    for rule_file in prometheus.get("rule_files", []):
        if config_target.parent / rule_file not in files:
            problems.append(f"prometheus: rule file {rule_file} is not mounted beside {config_target}")
    targets = [
        t
        for job in prometheus.get("scrape_configs", [])
        for sc in job.get("static_configs", [])
        for t in sc.get("targets", [])
    ]
    if f"{gateway_name}:{metrics_port}" not in targets:
        problems.append(f"prometheus: no scrape target {gateway_name}:{metrics_port} in {targets}")
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host not in compose["services"]:
            problems.append(f"prometheus: scrape target {target} names no compose service")
        elif host == gateway_name and int(port) != metrics_port:
            problems.append(f"prometheus: scrape target {target} is not the gateway's metrics.port {metrics_port}")
    return problems


def venue_healthcheck_problems(compose: Compose) -> list[str]:
    name = service_running(compose, "venue")
    check = compose["services"][name].get("healthcheck") or {}
    if check.get("disable") is True or check.get("test") in (["NONE"], "NONE"):
        return []
    return [f"{name}: serves no HTTP, so the image's HEALTHCHECK must be disabled there"]


def postgres_problems(compose: Compose) -> list[str]:
    problems = []
    gateway_name = service_running(compose, "run")
    gateway, postgres = compose["services"][gateway_name], compose["services"].get("postgres", {})
    if "postgres" not in postgres.get("profiles", []):
        problems.append("postgres: the service must be in the `postgres` profile")
    if "postgres" in (gateway.get("depends_on") or {}):
        # Only Compose v2.20+ can depend on a service of an inactive profile (`required: false`); Debian's 1.29
        # refuses the file. The gateway's restart policy brings it back once PostgreSQL accepts connections.
        problems.append(f"{gateway_name}: depends on postgres, which only the profile runs")
    if gateway.get("restart") not in RESTARTING:
        problems.append(f"{gateway_name}: without a restart policy it stays down when postgres starts after it")
    if not postgres.get("healthcheck"):
        problems.append("postgres: no healthcheck for the gateway to wait on")
    if environment(gateway).get("PGPASSWORD") != environment(postgres).get("POSTGRES_PASSWORD"):
        problems.append(f"{gateway_name}: PGPASSWORD differs from postgres's POSTGRES_PASSWORD")
    return problems


def restart_problems(compose: Compose) -> list[str]:
    """Every service is long-running: each must come back after a crash or a reboot."""
    return [
        f"{name}: restart is {svc.get('restart')!r}, not one of {RESTARTING}"
        for name, svc in compose["services"].items()
        if svc.get("restart") not in RESTARTING
    ]


def compose_1_29_problems(root: Path) -> list[str]:
    """What Debian bookworm's docker-compose (1.29) says of the file; skipped where it is not installed."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose (1.29, Debian's package) is not installed")
    result = subprocess.run([binary, "config", "--quiet"], cwd=root, capture_output=True, text=True, timeout=60)
    return [] if result.returncode == 0 else [result.stderr.strip()]


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    instructions = [(op.upper(), args.strip()) for op, _, args in (line.partition(" ") for line in lines)]
    start = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[start:]


def dockerfile_problems(dockerfile: str, gateway: config.GatewayConfig, volume_targets: list[str]) -> list[str]:
    problems = []
    stage = final_stage(dockerfile)
    users = [args for op, args in stage if op == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the final stage runs as root (USER: {users})")
    checks = [args for op, args in stage if op == "HEALTHCHECK"]
    command = healthcheck_command(dockerfile) if checks else []
    if command[:2] != ["sorgw", "healthcheck"] or "--config" in " ".join(command):
        # Its own --config would miss the config a compose file or `docker run` gives `sorgw run`.
        problems.append(f"the HEALTHCHECK is not `sorgw healthcheck` reading the running config ({checks})")
    exposed = {int(p.split("/")[0]) for op, args in stage if op == "EXPOSE" for p in args.split()}
    for what, port in (("upstream.port", gateway.upstream.port), ("metrics.port", gateway.metrics.port)):
        if port not in exposed:
            problems.append(f"{what} {port} is not EXPOSEd ({sorted(exposed)})")
    workdirs = [args for op, args in stage if op == "WORKDIR"]
    writable = PurePosixPath(workdirs[-1] if workdirs else "/") / "var"
    if not any(op == "RUN" and f"chown sorgw {writable}" in args for op, args in stage):
        problems.append(f"{writable} is not made writable for the sorgw user")
    if str(writable) not in volume_targets:
        problems.append(f"the gateway keeps {writable} in the container only: mount a volume there")
    if gateway.audit.url.startswith("sqlite:///"):
        audit_path = PurePosixPath(workdirs[-1] if workdirs else "/") / gateway.audit.url.removeprefix("sqlite:///")
        if writable not in audit_path.parents:
            problems.append(f"audit.url {gateway.audit.url} is outside the writable {writable}")
    return problems


def healthcheck_command(dockerfile: str) -> list[str]:
    """The exec-form command of the final stage's HEALTHCHECK."""
    check = [args for op, args in final_stage(dockerfile) if op == "HEALTHCHECK"][-1]
    return json.loads(check[check.index("CMD") + len("CMD") :])


def gateway_dockerfile_problems(compose: Compose, root: Path, dockerfile: str) -> list[str]:
    name = service_running(compose, "run")
    volume_targets = [target for _, target in mounts(compose["services"][name])]
    return dockerfile_problems(dockerfile, effective_config(compose, name, root), volume_targets)


# The repository's own files.


@pytest.fixture
def compose() -> Compose:
    return load_compose(ROOT)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the files compose reads, to break one at a time."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    return tmp_path


def test_bind_mounts_exist_and_named_volumes_are_declared(compose: Compose) -> None:
    assert mount_problems(compose, ROOT) == []


def test_commands_are_sorgw_commands(compose: Compose) -> None:
    assert command_problems(compose) == []
    assert {parse_command(svc).command for svc in ours(compose).values()} == {"run", "venue"}


def test_sorgw_environment_names_real_config_keys(compose: Compose) -> None:
    assert env_problems(compose, ROOT) == []


def test_ports_agree_with_the_config_files(compose: Compose) -> None:
    assert port_problems(compose, ROOT) == []


def test_prometheus_scrapes_the_gateway_metrics_port(compose: Compose) -> None:
    assert prometheus_problems(compose, ROOT) == []


def test_venues_container_has_no_http_healthcheck(compose: Compose) -> None:
    assert venue_healthcheck_problems(compose) == []


def test_postgres_profile_switches_the_audit_store(compose: Compose) -> None:
    assert postgres_problems(compose) == []
    name = service_running(compose, "run")
    with_postgres = effective_config(compose, name, ROOT, {"SORGW__AUDIT__URL": postgres_url(compose)})
    assert with_postgres.audit.url == "postgresql://sorgw@postgres:5432/sorgw"
    assert effective_config(compose, name, ROOT).audit.url.startswith("sqlite:///")


def test_dockerfile_healthcheck_ports_user_and_writable_dir(compose: Compose) -> None:
    assert gateway_dockerfile_problems(compose, ROOT, (ROOT / "Dockerfile").read_text()) == []


@pytest.mark.parametrize("problems, healthy", [({}, True), ({"engine": "loop stalled"}, False)])
def test_healthcheck_command_probes_a_real_endpoint(tree: Path, problems: dict[str, str], healthy: bool) -> None:
    endpoint = Endpoint("127.0.0.1", 0, CollectorRegistry(), lambda: problems, dict)
    endpoint.start()
    port = endpoint.url.rsplit(":", 1)[1]
    # The image's command as it runs in WORKDIR /app beside config/; the endpoint's free port set the way compose
    # sets the gateway's settings.
    command = [*SORGW, *healthcheck_command((ROOT / "Dockerfile").read_text())[1:]]
    env = {**os.environ, "SORGW__METRICS__PORT": port, "SORGW__METRICS__HOST": "0.0.0.0"}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=20, cwd=tree, env=env)

    try:
        result = run()
        assert (result.returncode == 0) is healthy, result.stderr
    finally:
        endpoint.stop()
    nothing = run()
    assert nothing.returncode == 1 and f"http://127.0.0.1:{port}/healthz" in nothing.stderr


def test_every_service_restarts(compose: Compose) -> None:
    assert restart_problems(compose) == []


def test_debians_docker_compose_accepts_the_file() -> None:
    assert compose_1_29_problems(ROOT) == []


# Each check fails on a broken copy.


def _service(name: str, key: str, value: Any) -> Callable[[Compose], None]:
    def mutate(compose: Compose) -> None:
        compose["services"][name][key] = value

    return mutate


def _env(name: str, key: str, value: str | None) -> Callable[[Compose], None]:
    def mutate(compose: Compose) -> None:
        compose["services"][name]["environment"][key] = value

    return mutate


BROKEN_COMPOSE = [
    (
        "missing bind mount",
        mount_problems,
        _service("prometheus", "volumes", ["./config/nowhere.yml:/etc/prometheus/prometheus.yml:ro"]),
    ),
    ("undeclared volume", mount_problems, _service("gateway", "volumes", ["undeclared:/app/var"])),
    ("misspelt option", command_problems, _service("gateway", "command", ["run", "--confg", "config/gateway.yaml"])),
    ("unknown subcommand", command_problems, _service("venues", "command", "serve --config config/venues.yaml")),
    ("unknown key", env_problems, _env("gateway", "SORGW__METRICS__PORTT", "9464")),
    ("key of the other file", env_problems, _env("venues", "SORGW__METRICS__HOST", "0.0.0.0")),
    ("list index out of range", env_problems, _env("gateway", "SORGW__VENUES__5__HOST", "venues")),
    ("bad audit url", env_problems, _env("gateway", "SORGW__AUDIT__URL", "mysql://db/audit")),
    ("fix port remapped", port_problems, _service("gateway", "ports", ["9877:9876", "9464:9464"])),
    ("metrics port unpublished", port_problems, _service("gateway", "ports", ["9876:9876"])),
    ("metrics on loopback", port_problems, _env("gateway", "SORGW__METRICS__HOST", "127.0.0.1")),
    ("venue host not the service", port_problems, _env("gateway", "SORGW__VENUES__2__HOST", "127.0.0.1")),
    ("venue port differs", port_problems, _env("gateway", "SORGW__VENUES__2__PORT", "9889")),
    ("venue on loopback", port_problems, _env("venues", "SORGW__VENUES__4__HOST", "127.0.0.1")),
    ("unknown broker", port_problems, _env("gateway", "SORGW__MQTT__URL", "mqtt://broker:1883")),
    ("venue port not exposed", port_problems, _service("venues", "expose", ["9881", "9882", "9883", "9884"])),
    ("metrics port not scraped", prometheus_problems, _env("gateway", "SORGW__METRICS__PORT", "9465")),
    (
        "config mounted elsewhere",
        prometheus_problems,
        _service("prometheus", "volumes", ["./config/prometheus.yml:/etc/prometheus/p.yml"]),
    ),
    ("venue healthcheck kept", venue_healthcheck_problems, _service("venues", "healthcheck", {"interval": "10s"})),
    ("postgres required", postgres_problems, _service("gateway", "depends_on", ["venues", "mosquitto", "postgres"])),
    ("gateway never restarts", postgres_problems, _service("gateway", "restart", "no")),
    ("no restart policy", restart_problems, _service("grafana", "restart", None)),
    ("postgres always on", postgres_problems, _service("postgres", "profiles", ["db"])),
    ("password differs", postgres_problems, _env("gateway", "PGPASSWORD", "secret")),
]


@pytest.mark.parametrize("check, mutate", [case[1:] for case in BROKEN_COMPOSE], ids=[c[0] for c in BROKEN_COMPOSE])
def test_checks_catch_a_broken_compose_file(
    tree: Path, check: Callable[..., list[str]], mutate: Callable[[Compose], None]
) -> None:
    broken = copy.deepcopy(load_compose(tree))
    mutate(broken)
    own = (command_problems, venue_healthcheck_problems, postgres_problems, restart_problems)
    args = (broken,) if check in own else (broken, tree)
    assert check(*args)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


def _metrics_port(text: str) -> str:
    return text + "\nmetrics: {port: 9470}\n"  # a later duplicate key wins in YAML as PyYAML reads it


@pytest.mark.parametrize(
    "path, edit, check",
    [
        ("config/gateway.yaml", _replace("port: 9876", "port: 9870"), port_problems),
        ("config/venues.yaml", _replace("port: 9883", "port: 9893"), port_problems),
        ("config/gateway.yaml", _metrics_port, port_problems),
        ("config/gateway.yaml", _metrics_port, prometheus_problems),
        ("config/prometheus.yml", _replace('"gateway:9464"', '"gateway:9465"'), prometheus_problems),
        ("config/prometheus.yml", _replace("- alerts.yml", "- rules.yml"), prometheus_problems),
    ],
    ids=["upstream port", "venue port", "metrics port", "metrics port scraped", "scrape port", "rule file"],
)
def test_checks_catch_a_broken_config_file(
    tree: Path, path: str, edit: Callable[[str], str], check: Callable[[Compose, Path], list[str]]
) -> None:
    (tree / path).write_text(edit((tree / path).read_text()))
    assert check(load_compose(tree), tree)


@pytest.mark.parametrize(
    "old, new",
    [
        ('CMD ["sorgw", "healthcheck"]', 'CMD ["sorgw", "status"]'),
        ('CMD ["sorgw", "healthcheck"]', 'CMD ["sorgw", "healthcheck", "--config", "config/gateway.yaml"]'),
        (
            'CMD ["sorgw", "healthcheck"]',
            'CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:9464/healthz\')"]',
        ),
        ("USER sorgw", "USER root"),
        ("USER sorgw\n", ""),
        ("EXPOSE 9876 9464", "EXPOSE 9876"),
        ("chown sorgw /app/var", "chmod 777 /tmp"),
    ],
)
def test_checks_catch_a_broken_dockerfile(compose: Compose, old: str, new: str) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert old in dockerfile
    assert gateway_dockerfile_problems(compose, ROOT, dockerfile.replace(old, new, 1))


def test_user_in_the_builder_stage_only_does_not_count(compose: Compose) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("USER sorgw\n", "")
    dockerfile = dockerfile.replace("WORKDIR /src\n", "WORKDIR /src\nUSER sorgw\n", 1)
    assert any("root" in p for p in gateway_dockerfile_problems(compose, ROOT, dockerfile))


def test_audit_file_outside_the_writable_dir_is_caught(compose: Compose) -> None:
    compose["services"]["gateway"]["environment"]["SORGW__AUDIT__URL"] = "sqlite:///audit.db"
    assert any("audit.url" in p for p in gateway_dockerfile_problems(compose, ROOT, (ROOT / "Dockerfile").read_text()))


def test_the_tls_sidecar_forwards_its_published_port_to_the_gateways_fix_port(compose: Compose) -> None:
    from tests.tls import stunnel_sections

    tls = compose["services"]["tls"]
    sources = dict(mounts(tls))
    oms = stunnel_sections((ROOT / "config/stunnel/gateway.conf").read_text())["oms"]
    assert sources["./config/stunnel/gateway.conf"] == "/etc/stunnel/sorgw.conf"
    assert oms["connect"] == f"gateway:{config.load(ROOT / 'config/gateway.yaml', config.GatewayConfig).upstream.port}"
    accept_port = oms["accept"].rsplit(":", 1)[1]
    assert f"{accept_port}:{accept_port}" in tls["ports"]
    assert oms["requireCert"] == "yes" and oms["verifyChain"] == "yes"
