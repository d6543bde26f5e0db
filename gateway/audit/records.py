"""Audit records and their hash chain: each record carries the hash of the one before it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Entry:
    """What a component hands to the audit trail; the writer numbers and chains it."""

    kind: str  # fix_in, fix_out, fix_refused, decision, state, reject, session, config, event, notice
    body: bytes  # a FIX message's exact bytes (SOH kept) or a JSON document in UTF-8
    session: str | None = None
    order_id: str | None = None
    cl_ord_id: str | None = None
    ts_ns: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    """A stored, numbered, chained audit record."""

    seq: int
    ts_ns: int
    kind: str
    session: str | None
    order_id: str | None
    cl_ord_id: str | None
    body: bytes
    prev_hash: str
    hash: str


FIELDS = ("seq", "ts_ns", "kind", "session", "order_id", "cl_ord_id", "body", "prev_hash", "hash")


def digest(seq: int, entry_ts: int, kind: str, session: str | None, order_id: str | None,
           cl_ord_id: str | None, body: bytes, prev_hash: str) -> str:
    # Over the body's bytes: a trail written when bodies were text (UTF-8 when hashed) verifies unchanged.
    head = "\x1f".join((str(seq), str(entry_ts), kind, session or "", order_id or "", cl_ord_id or "", ""))
    return hashlib.sha256(head.encode() + body + b"\x1f" + prev_hash.encode()).hexdigest()


def column(value: str | None) -> str | None:
    """A text column's value as every store can keep it: no NUL, no lone surrogate (escaped instead)."""
    if value is None or value.isascii() and "\x00" not in value:
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def chain(entries: list[Entry], next_seq: int, prev_hash: str) -> list[Record]:
    """Number and chain entries after the record (next_seq - 1, prev_hash)."""
    records = []
    for offset, e in enumerate(entries):
        seq = next_seq + offset
        session, order_id, cl_ord_id = column(e.session), column(e.order_id), column(e.cl_ord_id)
        h = digest(seq, e.ts_ns, e.kind, session, order_id, cl_ord_id, e.body, prev_hash)
        records.append(Record(seq, e.ts_ns, e.kind, session, order_id, cl_ord_id, e.body, prev_hash, h))
        prev_hash = h
    return records


def as_bytes(body: bytes | str) -> bytes:
    """A stored body as bytes: rows written before bodies were bytes hold text (FIX with | for SOH, or JSON)."""
    return body.encode() if isinstance(body, str) else bytes(body)


def first_break(records) -> str | None:
    """Walk records in seq order; describe the first one that was altered, removed or reordered."""
    expected_seq, prev_hash = 1, GENESIS
    for r in records:
        if r.seq != expected_seq:
            what = "missing" if r.seq > expected_seq else "out of order"
            return f"record {expected_seq} is {what} (found record {r.seq} in its place)"
        if r.prev_hash != prev_hash:
            return f"record {r.seq}: prev_hash does not match record {r.seq - 1}'s hash"
        if digest(r.seq, r.ts_ns, r.kind, r.session, r.order_id, r.cl_ord_id, r.body, r.prev_hash) != r.hash:
            return f"record {r.seq}: contents do not match its hash (altered)"
        expected_seq, prev_hash = r.seq + 1, r.hash
    return None
