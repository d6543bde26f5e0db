"""`sorgw audit show|verify|export`: read the audit trail back, check its chain, hand it to other tools."""

from __future__ import annotations

import base64
import csv
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from gateway.audit import checkpoints
from gateway.audit.records import FIELDS, Record, first_break, keyed
from gateway.core.types import OrdStatus

SOH = "\x01"
MARKS_LATE_MS = 60_000  # how long after its horizon a mark is still looked for (a mark thread that fell behind)
MSG_TYPES = {
    "D": "NewOrderSingle",
    "F": "OrderCancelRequest",
    "G": "OrderCancelReplaceRequest",
    "H": "OrderStatusRequest",
    "8": "ExecutionReport",
    "9": "OrderCancelReject",
    "3": "Reject",
    "j": "BusinessMessageReject",
    "A": "Logon",
    "5": "Logout",
    "0": "Heartbeat",
    "1": "TestRequest",
    "2": "ResendRequest",
    "4": "SequenceReset",
}
SHOWN_TAGS = {
    "11": "ClOrdID",
    "41": "OrigClOrdID",
    "150": "ExecType",
    "39": "OrdStatus",
    "54": "Side",
    "38": "OrderQty",
    "44": "Price",
    "32": "LastQty",
    "31": "LastPx",
    "30": "LastMkt",
    "14": "CumQty",
    "151": "LeavesQty",
    "6": "AvgPx",
    "58": "Text",
}


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_time(text: str) -> int:
    """An ISO-8601 time (UTC unless it says otherwise) as nanoseconds since the epoch."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000  # exact: a float timestamp is off by ~100 ns


def displayed(body: bytes) -> str:
    """Bytes for a terminal: SOH as |, bytes that are not UTF-8 as \\xNN (display only: the trail keeps them)."""
    return body.decode("utf-8", "backslashreplace").replace(SOH, "|")


def fix_fields(body: bytes) -> dict[str, str]:
    """tag -> value of a stored FIX message, for display (a legacy body has | for SOH and no SOH)."""
    text = body.decode("utf-8", "backslashreplace")
    out: dict[str, str] = {}
    for part in text.split(SOH if SOH in text else "|"):
        tag, sep, value = part.partition("=")
        if sep:
            out.setdefault(tag, value)
    return out


def summarize(record: Record) -> str:
    if record.kind in ("fix_in", "fix_out", "fix_refused"):
        fields = fix_fields(record.body)
        name = MSG_TYPES.get(fields.get("35", ""), fields.get("35", "?"))
        shown = " ".join(f"{label}={fields[tag]}" for tag, label in SHOWN_TAGS.items() if tag in fields)
        arrow = "<-" if record.kind != "fix_out" else "->"
        refused = " (refused: audit store down)" if record.kind == "fix_refused" else ""
        return f"{arrow} {record.session} {name} {shown}{refused}"
    body = json.loads(record.body)
    if record.kind == "decision":
        children = ", ".join(f"{c['venue']} {c['qty']}@{c['price'] or 'MKT'} {c['purpose']}" for c in body["children"])
        excluded = "; ".join(f"{e['venue']}: {e['reason']}" for e in body["exclusions"])
        return f"route {body['phase']}: {children or 'no children'} | {body['reason']}" + (
            f" | excluded {excluded}" if excluded else ""
        )
    if record.kind == "book":
        books = ", ".join(
            f"{b['venue']} #{b['seq']} " + ("unchanged" if "at" in b else f"{len(b['bids'])}x{len(b['asks'])} levels")
            for b in body.get("books", ())
        )
        return f"books read: {books or 'none'}"
    if record.kind == "state":
        old = OrdStatus(body["old"]).name if body["old"] else "-"
        return f"state {old} -> {OrdStatus(body['new']).name} cum={body['cum_qty']} leaves={body['leaves_qty']}"
    if record.kind == "reject":
        return f"{body['kind']} reject: {body['text']}"
    return f"{record.kind}: {displayed(record.body)}"


def show(store, key: str, out: TextIO = sys.stdout) -> int:
    records = store.for_order(key)
    if not records:
        print(f"sorgw audit: no records for {key!r} (an OrderID or any ClOrdID of the order)", file=sys.stderr)
        return 1
    lines = [(r.seq, r.ts_ns, summarize(r)) for r in records] + _marks_of(store, records)
    for seq, ts_ns, text in sorted(lines):
        print(f"{_time(ts_ns)}  #{seq:<7} {text}", file=out)
    return 0


def _marks_of(store, records: list[Record]) -> list[tuple[int, int, str]]:
    """(seq, ts_ns, text) of the markout marks of the order's fills: `marks` records name no order, only the
    upstream ExecIDs they mark, so they are looked for in the time the order's horizons span."""
    fills = {}  # upstream ExecID -> when the fill went up
    for r in records:
        if r.kind == "fix_out" and (fields := fix_fields(r.body)).get("35") == "8" and fields.get("150") == "F":
            fills[fields.get("17")] = r.ts_ns
    if not fills:
        return []
    config = store.last_before("config", records[0].seq)
    settings = json.loads(config.body).get("config", {}) if config is not None else {}
    horizons = settings.get("tca", {}).get("markout_horizons_ms", [])  # none on a trail from before marks
    end_ns = max(fills.values()) + (max(horizons, default=0) + MARKS_LATE_MS) * 1_000_000
    lines = []
    for r in store.records(min(fills.values()), end_ns):
        if r.kind != "marks":
            continue
        body = json.loads(r.body)
        for exec_id, horizon_ms in body["marks"]:
            if exec_id in fills:
                nbbo = f"{body['bid'] or '-'}/{body['ask'] or '-'}"
                lines.append((r.seq, r.ts_ns, f"mark {horizon_ms} ms after fill {exec_id}: NBBO {nbbo}"))
    return lines


def verify(store, key: bytes | None = None, checkpoint_file: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Walk the chain (keyed records with key), then hold it against every checkpoint in checkpoint_file."""
    try:
        if checkpoint_file is not None and key is None:
            raise ValueError("checkpoints are checked with the audit key, and none was given")
        anchors = checkpoints.Anchors(checkpoints.read(checkpoint_file, key) if checkpoint_file and key else [])
    except (OSError, ValueError) as exc:
        print(f"sorgw audit verify: {checkpoint_file}: {exc}", file=sys.stderr)
        return 1
    first_keyed = None

    def seen():
        nonlocal first_keyed
        for record in store.records():
            anchors.see(record.seq, record.hash)
            if first_keyed is None and keyed(record.hash):
                first_keyed = record.seq
            yield record

    problem = first_break(seen(), key) or anchors.first_problem()
    if problem:
        print(f"sorgw audit verify: chain broken: {problem}", file=sys.stderr)
        return 1
    count = anchors.last_seq
    scheme = "none keyed" if first_keyed is None else f"keyed (HMAC-SHA256) from record {first_keyed}"
    print(f"audit chain verified: {count} records, {scheme}", file=out)
    if checkpoint_file:
        last = anchors.checkpoints[-1] if anchors.checkpoints else None
        print(
            f"checkpoints: {len(anchors.checkpoints)} held"
            + (
                f", the last at record {last.seq} ({_time(last.ts_ns)} UTC); {count - last.seq} records after it"
                if last
                else ""
            ),
            file=out,
        )
    return 0


def exported(record: Record) -> dict:
    """A record as plain values: `body` is the body's text (SOH kept) when it is UTF-8, else None and
    `body_base64` holds its bytes; either way the exact bytes come back."""
    row = {f: getattr(record, f) for f in FIELDS}
    try:
        row["body"], row["body_base64"] = record.body.decode("utf-8"), None
    except UnicodeDecodeError:
        row["body"], row["body_base64"] = None, base64.b64encode(record.body).decode()
    return row


def export(store, fmt: str, start_ns: int | None, end_ns: int | None, out: TextIO = sys.stdout) -> int:
    records = store.records(start_ns, end_ns)
    if fmt == "jsonl":
        for r in records:
            row = exported(r)
            if row["body_base64"] is None:
                del row["body_base64"]
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
    else:
        writer = csv.writer(out)
        writer.writerow((*FIELDS, "body_base64"))
        for r in records:
            writer.writerow(exported(r).values())
    return 0
