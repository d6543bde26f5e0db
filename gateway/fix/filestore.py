"""The messages a session's quickfix FileStore holds, read from its files as quickfix 1.16 writes them.

quickfix stores an outgoing message (FileStore::set) by appending its bytes to PREFIX.body and
"MsgSeqNum,offset,size " to PREFIX.header (the body is flushed first), and only then raises the next
sender number in PREFIX.seqnums; it sends the message after that. A message is taken as stored and sent
only if its number is below the next sender number quickfix read at start, its header entry is whole
(the last entry for a number wins, as in quickfix), and its body bytes are a complete FIX message with
that MsgSeqNum: a process that died mid-write leaves a torn tail, which is skipped, never guessed at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

_ENTRY = re.compile(rb"(\d+),(\d+),(\d+) ")


class StoredMessages(Mapping[int, bytes]):
    """MsgSeqNum -> the stored bytes of each message below `next_sender`; a torn entry reads as missing."""

    def __init__(self, prefix: Path, next_sender: int) -> None:
        self._offsets: dict[int, tuple[int, int]] = {}
        self._body: int | None = None
        try:
            header = Path(f"{prefix}.header").read_bytes()
            self._body = os.open(f"{prefix}.body", os.O_RDONLY)
        except FileNotFoundError:
            return
        at = 0
        while (entry := _ENTRY.match(header, at)) is not None:
            seq, offset, size = (int(group) for group in entry.groups())
            if seq < next_sender:
                self._offsets[seq] = (offset, size)
            at = entry.end()

    def __getitem__(self, seq: int) -> bytes:
        offset, size = self._offsets[seq]
        raw = os.pread(self._body, size, offset) if self._body is not None else b""
        if not complete(raw, seq):
            raise KeyError(seq)
        return raw

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._offsets))

    def __len__(self) -> int:
        return len(self._offsets)

    def close(self) -> None:
        if self._body is not None:
            os.close(self._body)
        self._body = None
        self._offsets.clear()


def complete(raw: bytes, seq: int) -> bool:
    """Whether raw is one whole FIX message (BodyLength and CheckSum agree) carrying MsgSeqNum seq."""
    if not raw.startswith(b"8=") or not raw.endswith(b"\x01"):
        return False
    begin_end = raw.find(b"\x01")
    length_end = raw.find(b"\x01", begin_end + 1)
    length = raw[begin_end + 1 : length_end]
    if not length.startswith(b"9=") or not length[2:].isdigit():
        return False
    trailer = length_end + 1 + int(length[2:])
    checksum = raw[trailer:]
    if len(checksum) != 7 or not checksum.startswith(b"10=") or not checksum[3:6].isdigit():
        return False
    return int(checksum[3:6]) == sum(raw[:trailer]) % 256 and b"\x0134=%d\x01" % seq in raw[:trailer]
