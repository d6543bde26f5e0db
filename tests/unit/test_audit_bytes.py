"""Audit bodies are exact bytes: old text trails still verify, odd bytes never stop the writer, a failed commit
is neither lost nor written twice, and the CLI shows and exports what was stored."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3
import threading
import time

from gateway.audit import commands
from gateway.audit.records import GENESIS, Entry, first_break
from gateway.audit.sqlite import SqliteStore
from gateway.audit.writer import AuditWriter
from gateway.fix import codec
from gateway.fix.wire import WireMessage

BAD = b"8=FIX.4.4\x0135=D\x0111=B1\x0155=AAPL\x01100=\xff\xfe\x0158=desk A|note\x01"


def _old_digest(seq, ts, kind, session, order_id, cl_ord_id, body: str, prev_hash) -> str:
    """How records were hashed when bodies were text."""
    text = "\x1f".join((str(seq), str(ts), kind, session or "", order_id or "", cl_ord_id or "", body, prev_hash))
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_trail_written_with_text_bodies_still_verifies_and_reads_as_bytes(tmp_path):
    path = tmp_path / "audit.db"
    rows, prev = [], GENESIS
    for seq, (kind, body) in enumerate(
        [("config", '{"boot":"b1","note":"caf\u00e9"}'), ("fix_in", "8=FIX.4.4|35=D|11=C1|58=caf\u00e9|")], start=1
    ):
        h = _old_digest(seq, 10 + seq, kind, "S", None, "C1", body, prev)
        rows.append((seq, 10 + seq, kind, "S", None, "C1", body, prev, h))
        prev = h
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL, "
            "session TEXT, order_id TEXT, cl_ord_id TEXT, body TEXT NOT NULL, prev_hash TEXT NOT NULL, "
            "hash TEXT NOT NULL)"
        )
        db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    writer = AuditWriter(SqliteStore(path))  # a new run appends bytes to the old file
    writer.start()
    writer.commit([Entry("fix_in", BAD, "S", None, "B1", 99)])
    writer.stop()
    store = SqliteStore(path)
    store.open()
    records = list(store.records())
    store.close()
    assert first_break(records) is None
    assert [r.body for r in records] == [rows[0][6].encode(), rows[1][6].encode(), BAD]
    legacy = WireMessage(records[1].body)  # | stood for SOH when the body has none
    assert legacy.getHeader().getField(codec.MSG_TYPE) == "D" and legacy.getField(58) == "caf\u00e9"


def test_a_message_reads_back_as_its_live_callback_saw_it():
    msg = WireMessage(BAD)
    assert msg.getField(58) == "desk A|note"  # a | in a value is data once SOH separates fields
    assert msg.getField(100) == "\udcff\udcfe"  # what quickfix's binding hands over (surrogateescape)
    assert msg.toString().encode("utf-8", "surrogateescape") == BAD
    assert not msg.isSetField(44)


def test_show_escapes_what_is_not_utf8_and_export_gives_the_exact_bytes_back(tmp_path):
    path = tmp_path / "audit.db"
    writer = AuditWriter(SqliteStore(path))
    writer.start()
    writer.commit([Entry("fix_in", BAD, "S", "NONE", "B1", 5)])
    writer.stop()
    store = SqliteStore(path)
    store.open()
    shown = io.StringIO()
    assert commands.show(store, "B1", shown) == 0
    assert "ClOrdID=B1" in shown.getvalue() and "Text=desk A|note" in shown.getvalue()
    assert commands.displayed(BAD).endswith("|100=\\xff\\xfe|58=desk A|note|")
    out = io.StringIO()
    commands.export(store, "jsonl", None, None, out)
    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "body" not in row or row["body"] is None
    assert base64.b64decode(row["body_base64"]) == BAD
    out = io.StringIO()
    commands.export(store, "csv", None, None, out)
    header, line = out.getvalue().splitlines()[:2]
    assert header.endswith("body,prev_hash,hash,body_base64") and base64.b64decode(line.split(",")[-1]) == BAD
    store.close()


def test_an_entry_that_cannot_be_stored_is_recorded_as_such_and_later_entries_go_on(tmp_path):
    writer = AuditWriter(SqliteStore(tmp_path / "audit.db"))
    writer.start()
    broken = Entry("fix_in", "a str, not bytes", "S\udcff", None, "X\x00Y", 1)  # a defect upstream of the writer
    writer.commit([broken, Entry("event", b'{"after":1}', ts_ns=2)])
    writer.commit([Entry("fix_in", BAD, "S\udcff", None, "X\x00Y", 3)])  # odd text in the columns is escaped
    assert writer.writable and writer.unstorable == 1
    writer.stop()
    store = SqliteStore(tmp_path / "audit.db")
    store.open()
    records = list(store.records())
    store.close()
    assert first_break(records) is None
    assert [r.kind for r in records] == ["unstorable", "event", "fix_in"]
    assert "a str, not bytes" in json.loads(records[0].body)["entry"]
    assert (records[2].session, records[2].cl_ord_id, records[2].body) == ("S\\xff", "X\\x00Y", BAD)


class FlakyStore(SqliteStore):
    """Refuses appends while `down`; with `lose_ack`, the next append commits and then raises."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.down = False
        self.lose_ack = False
        self.opens = 0

    def open(self, create=True):
        if self.down:
            raise ConnectionError("database is down")
        self.opens += 1
        return super().open(create)

    def append(self, records):
        if self.down:
            raise ConnectionError("connection lost")
        super().append(records)
        if self.lose_ack:
            self.lose_ack = False
            raise ConnectionError("connection lost after COMMIT")


def test_the_writer_reopens_the_store_and_writes_each_batch_once(tmp_path):
    store = FlakyStore(tmp_path / "audit.db")
    writer = AuditWriter(store)
    writer.start()
    writer.commit([Entry("event", b"1", ts_ns=1)])
    store.lose_ack = True  # committed, but the writer is told it failed: re-read, not rewritten
    writer.commit([Entry("event", b"2", ts_ns=2)])
    assert writer.reconnects == 1

    store.down = True
    done = threading.Event()
    threading.Thread(target=lambda: (writer.commit([Entry("event", b"3", ts_ns=3)]), done.set()), daemon=True).start()
    deadline = time.monotonic() + 5
    while writer.writable and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not writer.writable and not writer.wait_writable(0.2) and not done.is_set()
    store.down = False
    assert writer.wait_writable(5) and done.wait(5)
    writer.commit([Entry("event", b"4", ts_ns=4)])
    writer.stop()

    reader = SqliteStore(tmp_path / "audit.db")
    reader.open()
    records = list(reader.records())
    reader.close()
    assert [r.body for r in records] == [b"1", b"2", b"3", b"4"] and first_break(records) is None
    assert store.opens >= 3 and writer.errors >= 2
