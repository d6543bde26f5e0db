"""Audit records and their hash chain: each record carries the hash of the one before it, keyed (HMAC) or plain."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import NamedTuple

GENESIS = "0" * 64
# A keyed record's hash names its scheme; a plain SHA-256 hash (64 hex digits, no prefix) is a record written
# before keying. Once a record is keyed, every later one must be: plain hashes anyone can recompute.
KEYED = "hmac-sha256:"
MIN_KEY_CHARS = 32


@dataclass(frozen=True, slots=True)
class Entry:
    """What a component hands to the audit trail; the writer numbers and chains it."""

    kind: str  # fix_in, fix_out, fix_refused, decision, state, reject, session, config, event, notice
    body: bytes  # a FIX message's exact bytes (SOH kept) or a JSON document in UTF-8
    session: str | None = None
    order_id: str | None = None
    cl_ord_id: str | None = None
    ts_ns: int = 0


class Record(NamedTuple):
    """A stored, numbered, chained audit record: a tuple in the stores' column order, so a batch is its rows."""

    seq: int
    ts_ns: int
    kind: str
    session: str | None
    order_id: str | None
    cl_ord_id: str | None
    body: bytes
    prev_hash: str
    hash: str


FIELDS = Record._fields


def _content(
    seq: int,
    entry_ts: int,
    kind: str,
    session: str | None,
    order_id: str | None,
    cl_ord_id: str | None,
    body: bytes,
    prev_hash: str,
) -> bytes:
    # Over the body's bytes: a trail written when bodies were text (UTF-8 when hashed) verifies unchanged.
    head = "\x1f".join((str(seq), str(entry_ts), kind, session or "", order_id or "", cl_ord_id or "", ""))
    return head.encode() + body + b"\x1f" + prev_hash.encode()


def digest(
    seq: int,
    entry_ts: int,
    kind: str,
    session: str | None,
    order_id: str | None,
    cl_ord_id: str | None,
    body: bytes,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """The record's hash: HMAC-SHA256 under key (prefixed with its scheme), plain SHA-256 without one."""
    content = _content(seq, entry_ts, kind, session, order_id, cl_ord_id, body, prev_hash)
    if key is None:
        return hashlib.sha256(content).hexdigest()
    return KEYED + hmac.digest(key, content, "sha256").hex()


def keyed(hash_: str) -> bool:
    return hash_.startswith(KEYED)


def audit_key(value: str | None, variable: str) -> bytes:
    """The HMAC key an environment variable holds; ValueError naming the variable when it is unset or short."""
    if not value:
        raise ValueError(f"environment variable {variable} (the audit HMAC key) is not set")
    if len(value) < MIN_KEY_CHARS:
        raise ValueError(
            f"environment variable {variable} holds {len(value)} characters: the audit HMAC key "
            f"needs at least {MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)"
        )
    return value.encode()


def column(value: str | None) -> str | None:
    """A text column's value as every store can keep it: no NUL, no lone surrogate (escaped instead)."""
    if value is None or value.isascii() and "\x00" not in value:
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def chain(entries: list[Entry], next_seq: int, prev_hash: str, key: bytes | None = None) -> list[Record]:
    """Number and chain entries after the record (next_seq - 1, prev_hash), keyed when a key is given."""
    records = []
    for seq, e in enumerate(entries, next_seq):
        session, order_id, cl_ord_id = column(e.session), column(e.order_id), column(e.cl_ord_id)
        h = digest(seq, e.ts_ns, e.kind, session, order_id, cl_ord_id, e.body, prev_hash, key)
        records.append(Record(seq, e.ts_ns, e.kind, session, order_id, cl_ord_id, e.body, prev_hash, h))
        prev_hash = h
    return records


def as_bytes(body: bytes | str) -> bytes:
    """A stored body as bytes: rows written before bodies were bytes hold text (FIX with | for SOH, or JSON)."""
    return body.encode() if isinstance(body, str) else bytes(body)


def first_break(records, key: bytes | None = None) -> str | None:
    """Walk records in seq order; describe the first one that was altered, removed, reordered or downgraded.

    Keyed records are checked with key; without it a keyed record cannot be checked, which is a break too.
    With a key, the trail must end keyed: a keyed gateway writes a keyed record at every start, so a trail
    ending plain was either never written with the key or rewritten by someone without it.
    """
    expected_seq, prev_hash, first_keyed = 1, GENESIS, None
    for r in records:
        if r.seq != expected_seq:
            what = "missing" if r.seq > expected_seq else "out of order"
            return f"record {expected_seq} is {what} (found record {r.seq} in its place)"
        if r.prev_hash != prev_hash:
            return f"record {r.seq}: prev_hash does not match record {r.seq - 1}'s hash"
        if keyed(r.hash):
            if key is None:
                return (
                    f"record {r.seq} is keyed (HMAC-SHA256) and no key was given: set the variable "
                    "audit.hmac_key_env names (or pass --key-env)"
                )
            first_keyed = first_keyed or r.seq
        elif first_keyed is not None:
            return (
                f"record {r.seq}: unkeyed hash after keyed record {first_keyed} (downgraded: rewritten without the key)"
            )
        if (
            digest(
                r.seq,
                r.ts_ns,
                r.kind,
                r.session,
                r.order_id,
                r.cl_ord_id,
                r.body,
                r.prev_hash,
                key if keyed(r.hash) else None,
            )
            != r.hash
        ):
            return f"record {r.seq}: contents do not match its hash (altered)"
        expected_seq, prev_hash = r.seq + 1, r.hash
    if key is not None and expected_seq > 1 and first_keyed is None:
        return (
            f"no record of {expected_seq - 1} is keyed: downgraded (rewritten without the key), unless no "
            "gateway has written this trail with the key yet (then verify without it)"
        )
    return None
