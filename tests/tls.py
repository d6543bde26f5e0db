"""For TLS tests: a certificate authority of the test's own (openssl) and the certificates it signs, and a check
that a sidecar (stunnel, a broker) listens."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from tests.unavailable import unavailable


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path) -> Path:
    """A self-signed CA in directory (ca.crt, ca.key); returns ca.crt."""
    if shutil.which("openssl") is None:
        unavailable("openssl is needed for the TLS tests")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=sorgw test CA",
        cwd=directory,
    )
    return directory / "ca.crt"


def issue(directory: Path, name: str, common_name: str = "localhost") -> tuple[Path, Path]:
    """A certificate for common_name (also valid for 127.0.0.1) signed by the CA in directory: (NAME.crt, NAME.key)."""
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={common_name}",
        cwd=directory,
    )
    (directory / f"{name}.ext").write_text(f"subjectAltName=DNS:{common_name},IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        cwd=directory,
    )
    return directory / f"{name}.crt", directory / f"{name}.key"


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def stunnel_sections(text: str) -> dict[str, dict[str, str]]:
    """The [service] sections of a stunnel config as option -> value (global options under "")."""
    sections: dict[str, dict[str, str]] = {"": {}}
    current = sections[""]
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections
