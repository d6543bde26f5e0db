"""Start-up failures to listen on a port, named by the config key that chose the port."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping


class PortInUse(Exception):
    """A port we were configured to listen on could not be bound; the message names the key to change."""

    def __init__(self, key: str, host: str, port: int, detail: str) -> None:
        super().__init__(
            f"{key}: cannot listen on {host}:{port} ({detail}); stop whatever holds the port or set {key} to a free one"
        )
        self.key, self.port = key, port


def start_acceptor(start: Callable[[], None], keys: Mapping[int, tuple[str, str]]) -> None:
    """Start a quickfix acceptor; PortInUse naming the key of the port it could not bind (`keys`: port -> key, host)."""
    try:
        start()
    except Exception as exc:  # quickfix.RuntimeError: "Unable to create, bind, or listen to port N (...)"
        match = re.search(r"listen to port (\d+) \((.*)\)", str(exc))
        if match is None or int(match.group(1)) not in keys:
            raise
        port = int(match.group(1))
        key, host = keys[port]
        raise PortInUse(key, host, port, match.group(2)) from None
