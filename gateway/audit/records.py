"""Audit records and their hash chain: each record carries the hash of the one before it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Entry:
    """What a component hands to the audit trail; the writer numbers and chains it."""

    kind: str  # fix_in, fix_out, decision, state, reject, session, config
    body: str  # the raw FIX message (| for SOH) or a JSON document
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
    body: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in FIELDS}


FIELDS = ("seq", "ts_ns", "kind", "session", "order_id", "cl_ord_id", "body", "prev_hash", "hash")


def digest(seq: int, entry_ts: int, kind: str, session: str | None, order_id: str | None,
           cl_ord_id: str | None, body: str, prev_hash: str) -> str:
    text = "\x1f".join((str(seq), str(entry_ts), kind, session or "", order_id or "", cl_ord_id or "", body,
                        prev_hash))
    return hashlib.sha256(text.encode()).hexdigest()


def chain(entries: list[Entry], next_seq: int, prev_hash: str) -> list[Record]:
    """Number and chain entries after the record (next_seq - 1, prev_hash)."""
    records = []
    for offset, e in enumerate(entries):
        seq = next_seq + offset
        h = digest(seq, e.ts_ns, e.kind, e.session, e.order_id, e.cl_ord_id, e.body, prev_hash)
        records.append(Record(seq, e.ts_ns, e.kind, e.session, e.order_id, e.cl_ord_id, e.body, prev_hash, h))
        prev_hash = h
    return records


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
