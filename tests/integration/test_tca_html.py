"""`sorgw tca --format html` opened in headless Chromium: no console or load errors, every plot decoded with a size,
and a screenshot. In CI a missing chromium fails the test; elsewhere it is skipped with the reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_tca import session, tca  # noqa: F401 (the recorded session fixture)

pytestmark = pytest.mark.integration

# Collects console errors and warnings, uncaught errors and failed loads, then, once the page has loaded, writes
# them with every image's decoded size into the body's data-probe attribute for --dump-dom to show.
PROBE = """<script>
window.__problems = [];
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { window.__problems.push(level + ": " + args.join(" ")); original(...args); };
}
window.addEventListener("error", e => window.__problems.push("error: " + (e.message || e.target.outerHTML)), true);
window.addEventListener("load", () => document.body.setAttribute("data-probe", JSON.stringify({
  problems: window.__problems,
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))
})));
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    return found


def headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def probe(browser: str, page: Path, tmp_path: Path) -> dict:
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    done = headless(browser, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert match, f"the page never finished loading: {done.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_the_html_report_loads_clean_with_its_plots(session, tmp_path):  # noqa: F811
    browser = chromium()
    gateway_cfg, _, _ = session
    page = tmp_path / "tca.html"
    written = tca(gateway_cfg.audit.url, "--format", "html", "--out", str(page))
    assert written.returncode == 0, written.stderr
    html = page.read_text()
    assert "<script" not in html and "http" not in html.split("<body>", 1)[1]  # self-contained: nothing to fetch
    result = probe(browser, page, tmp_path)
    assert result["problems"] == []
    assert [i["alt"] for i in result["images"]] == [
        "Distribution of implementation shortfall",
        "Markout curves per venue",
        "Venue shares over time",
    ]
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in result["images"]), result["images"]

    shot = tmp_path / "tca.png"
    done = headless(browser, f"--screenshot={shot}", "--window-size=1400,2000", page.as_uri())
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr[-2000:]


def test_the_probe_sees_a_broken_plot_and_a_console_error(tmp_path):
    """The checks above can fail: an image that does not decode and a script error are both caught."""
    browser = chromium()
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><title>x</title></head><body><img alt="bad" '
        'src="data:image/png;base64,AAAA"><script>console.error("boom")</script></body></html>'
    )
    result = probe(browser, page, tmp_path)
    assert result["images"][0]["w"] == 0
    assert any("boom" in p for p in result["problems"]) and len(result["problems"]) == 2


def test_html_needs_an_output_file(session):  # noqa: F811
    gateway_cfg, _, _ = session
    refused = tca(gateway_cfg.audit.url, "--format", "html")
    assert refused.returncode == 1 and "--out FILE" in refused.stderr
