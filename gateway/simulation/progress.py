"""A plain-text progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._shown_tenth = -1

    def step(self, label: str) -> None:
        self.done += 1
        tenth = self.done * 10 // self.total
        if not self._tty and tenth == self._shown_tenth:
            return
        self._shown_tenth = tenth
        filled = self.done * WIDTH // self.total
        line = f"simulate [{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total} {label}"
        self._stream.write(f"\r{line:<{WIDTH + 60}}" if self._tty else line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
