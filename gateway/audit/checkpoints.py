"""Signed checkpoints of the audit trail's head, kept outside the table, and the check of a trail against them."""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

DOMAIN = b"sorgw-audit-checkpoint"  # a checkpoint's MAC can never pass for a record's


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head of the trail (its last record's seq and hash) at a moment, signed with the audit key."""

    seq: int
    hash: str
    ts_ns: int

    def signature(self, key: bytes) -> str:
        content = b"\x1f".join((DOMAIN, str(self.seq).encode(), self.hash.encode(), str(self.ts_ns).encode()))
        return hmac.digest(key, content, "sha256").hex()

    def line(self, key: bytes) -> str:
        return (
            json.dumps(
                {"seq": self.seq, "hash": self.hash, "ts_ns": self.ts_ns, "mac": self.signature(key)},
                separators=(",", ":"),
            )
            + "\n"
        )


def append(path: Path, checkpoint: Checkpoint, key: bytes) -> None:
    """Add one line to the checkpoint file and make it durable before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="ascii") as f:
        f.write(checkpoint.line(key))
        f.flush()
        os.fsync(f.fileno())


def read(path: Path, key: bytes) -> list[Checkpoint]:
    """Every checkpoint in the file, in order; ValueError naming the first line that is malformed or not
    signed with key (altered or forged)."""
    checkpoints = []
    for number, text in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            fields = json.loads(text)
            checkpoint = Checkpoint(int(fields["seq"]), str(fields["hash"]), int(fields["ts_ns"]))
            mac = str(fields["mac"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"checkpoint line {number} is malformed: {exc}") from None
        if not hmac.compare_digest(mac, checkpoint.signature(key)):
            raise ValueError(f"checkpoint line {number} is not signed with this key (altered or forged)")
        checkpoints.append(checkpoint)
    return checkpoints


class Anchors:
    """Collects, while the chain is walked, the hashes of the records the checkpoints name."""

    def __init__(self, checkpoints: list[Checkpoint]) -> None:
        self.checkpoints = checkpoints
        self._wanted = {c.seq for c in checkpoints}
        self.found: dict[int, str] = {}
        self.last_seq = 0

    def see(self, seq: int, hash_: str) -> None:
        self.last_seq = seq
        if seq in self._wanted:
            self.found[seq] = hash_

    def first_problem(self) -> str | None:
        """The first checkpoint the trail no longer satisfies: truncated before it, or rewritten at it."""
        for number, c in enumerate(self.checkpoints, 1):
            if c.seq > self.last_seq:
                return (
                    f"truncated: checkpoint {number} names record {c.seq}, but the trail ends at record {self.last_seq}"
                )
            if c.seq > 0 and self.found.get(c.seq) != c.hash:
                return f"record {c.seq} does not match checkpoint {number}'s hash (rewritten)"
        return None
