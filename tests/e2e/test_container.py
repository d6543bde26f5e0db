"""The image for real: built from a Debian base made here (scripts/build-base-image.sh), its container runs as the
non-root user, its HEALTHCHECK turns healthy on the metrics port of the config it runs, `sorgw demo` passes inside
it, and matplotlib stays out of it. Opt-in (it builds images): SORGW_CONTAINER_TESTS=1. Where a step cannot run
(no docker binary, no daemon and no root to start one, no debootstrap for the base), it skips saying which.

Run it alone to see the timings: SORGW_CONTAINER_TESTS=1 pytest tests/e2e/test_container.py -s"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("SORGW_BASE_IMAGE", "sorgw-base:bookworm")
IMAGE = "sor-gateway:container-test"
METRICS_PORT = "9470"  # not the image's 9464: the health check must read it from the config the container runs
BUILD_TIMEOUT_S = 1800  # without a prebuilt quickfix wheel the builder compiles it (~10 minutes on one core)
TIMINGS: dict[str, float] = {}

if os.environ.get("SORGW_CONTAINER_TESTS") != "1":
    pytest.skip(
        "container tests are opt-in (they build images, minutes): set SORGW_CONTAINER_TESTS=1", allow_module_level=True
    )


def _run(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


def _timed(step: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    start = time.monotonic()
    try:
        return _run(*args, timeout=timeout)
    finally:
        TIMINGS[step] = time.monotonic() - start


def _daemon_answers() -> bool:
    return _run("docker", "info", timeout=30, check=False).returncode == 0


@pytest.fixture(scope="module")
def docker(tmp_path_factory) -> Iterator[None]:
    """A Docker daemon: the one running, else dockerd started here (as root) and stopped at the end."""
    if shutil.which("docker") is None:
        pytest.skip("no docker binary (apt-get install docker.io)")
    if _daemon_answers():
        yield
        return
    if shutil.which("dockerd") is None:
        pytest.skip("no Docker daemon answers and there is no dockerd to start (apt-get install docker.io)")
    if os.geteuid() != 0:
        pytest.skip("no Docker daemon answers, and starting dockerd needs root")
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    daemon = subprocess.Popen(["dockerd"], stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not _daemon_answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            pytest.skip(f"dockerd would not start here: {log.read_text()[-1500:]}")
        time.sleep(0.5)
    try:
        yield
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


@pytest.fixture(scope="module")
def base_image(docker) -> str:
    """BASE_IMAGE (SORGW_BASE_IMAGE, default sorgw-base:bookworm), built with debootstrap when it is missing."""
    if _run("docker", "image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    if shutil.which("debootstrap") is None:
        pytest.skip(f"no base image {BASE_IMAGE} and no debootstrap to make one (apt-get install debootstrap)")
    if os.geteuid() != 0:
        pytest.skip(f"no base image {BASE_IMAGE}, and debootstrap needs root to make one")
    _timed(
        "base image (debootstrap + docker import)",
        str(ROOT / "scripts" / "build-base-image.sh"),
        BASE_IMAGE,
        timeout=BUILD_TIMEOUT_S,
    )
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image(base_image: str) -> str:
    """The image, built offline: wheels/ holds every dependency (made by this interpreter's pip, which finds a
    prebuilt quickfix through PIP_FIND_LINKS when there is one), so the builder needs no index."""
    wheels = ROOT / "wheels"
    for old in wheels.glob("*.whl"):
        old.unlink()
    start = time.monotonic()
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(ROOT), timeout=BUILD_TIMEOUT_S
    )
    _run(sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), "setuptools>=68", timeout=300)
    for own in wheels.glob("sor_gateway-*.whl"):
        own.unlink()  # the builder makes the project's wheel from the sources it copies
    TIMINGS["wheels for the build context"] = time.monotonic() - start
    _timed(
        "docker build",
        "docker",
        "build",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--build-arg",
        "PIP_NO_INDEX=1",
        "-t",
        IMAGE,
        str(ROOT),
        timeout=BUILD_TIMEOUT_S,
    )
    return IMAGE


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    """`sorgw run` with the image's own command and config, its metrics port moved by an environment override."""
    name = f"sorgw-test-{uuid.uuid4().hex[:8]}"
    _run("docker", "run", "--detach", "--name", name, "--env", f"SORGW__METRICS__PORT={METRICS_PORT}", image)
    try:
        yield name
    finally:
        _run("docker", "rm", "--force", name, check=False)
        print("\ncontainer test timings: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in TIMINGS.items()))


def test_the_container_runs_as_the_non_root_user(container: str) -> None:
    status = _run("docker", "exec", container, "cat", "/proc/1/status").stdout
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == "10001"  # PID 1, `sorgw run`, as the image's sorgw user
    assert _run("docker", "exec", container, "id", "-un").stdout.strip() == "sorgw"


def test_the_healthcheck_turns_healthy_on_the_configured_port(container: str) -> None:
    start = time.monotonic()
    state: dict = {}
    while time.monotonic() - start < 120:
        state = json.loads(_run("docker", "inspect", "--format", "{{json .State.Health}}", container).stdout)
        if state["Status"] != "starting":
            break
        time.sleep(1)
    TIMINGS["healthy after start"] = time.monotonic() - start
    assert state["Status"] == "healthy", state
    assert f"http://127.0.0.1:{METRICS_PORT}/healthz" in state["Log"][-1]["Output"]


def test_sorgw_demo_passes_inside_the_container(container: str) -> None:
    demo = _timed("sorgw demo in the container", "docker", "exec", container, "sorgw", "demo", "--quiet", timeout=300)
    assert "met every expectation" in demo.stdout, demo.stdout


def test_matplotlib_is_not_in_the_image(container: str) -> None:
    chart = _run("docker", "exec", container, "sorgw", "simulate", "--runs", "1", check=False)
    assert chart.returncode == 2
    assert "pip install 'sor-gateway[sim]'" in chart.stderr
