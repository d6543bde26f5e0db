"""The audit trail of a running gateway, in SQLite and in PostgreSQL, read back through `sorgw audit`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import uuid

import pytest

from gateway import topology
from gateway.audit.postgres import BODY_TYPE, SCHEMA as POSTGRES_SCHEMA, PostgresStore
from gateway.audit.records import GENESIS, Entry, first_break
from gateway.audit.stores import open_store
from gateway.audit.writer import AuditWriter
from gateway.fix import codec
from gateway.stack import Stack

pytestmark = pytest.mark.integration
SORGW = [sys.executable, "-m", "gateway.cli", "audit"]


def trade(tmp_path, audit: dict | None = None):
    overrides = {"audit": audit} if audit else None
    gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides=overrides)
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        oms = stack.oms
        oms.new_order("A1", "AAPL", "1", 900, price="190.03", urgency="H")
        oms.wait_final("A1")
        oms.new_order("A2", "AAPL", "1", 100, price="189.50", urgency="H")
        oms.wait(lambda: any(m.get(codec.EXEC_TYPE) == "0" for m in oms.reports("A2")), 5)
        oms.cancel("A2-X", "A2", "AAPL", "1", 100)
        oms.wait_final("A2-X")
        oms.new_order("BAD", "AAPL", "1", 0, price="190.00")
        oms.wait_final("BAD")
        received = [m for m in oms.received if m.msg_type in ("8", "9")]
    return received, gateway_cfg.audit.url


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SORGW + ["--url", url, *args], capture_output=True, text=True, timeout=60)


def check_trail(url: str, received, table: str = "audit") -> None:
    store = open_store(url, table)
    store.open()
    try:
        records = list(store.records())
        assert first_break(records) is None
        kinds = {r.kind for r in records}
        assert {"config", "session", "fix_in", "fix_out", "decision", "state", "reject"} <= kinds
        # Every report the OMS received was recorded as sent, byte for byte in its business fields.
        sent_exec_ids = {
            f.split(b"=", 1)[1].decode()
            for r in records
            if r.kind == "fix_out" and b"\x0135=8\x01" in r.body
            for f in r.body.split(b"\x01")
            if f.startswith(b"17=")
        }
        assert {m[codec.EXEC_ID] for m in received if m.msg_type == "8"} <= sent_exec_ids
        # The order message and the decisions are on record before anything the gateway sent for it.
        for order_id in {r.order_id for r in records if r.kind == "decision"}:
            story = store.for_order(order_id)
            first_out = min(r.seq for r in story if r.kind == "fix_out")
            assert story[0].kind == "fix_in" and b"\x0135=D\x01" in story[0].body
            assert min(r.seq for r in story if r.kind == "decision") < first_out
    finally:
        store.close()


def test_sqlite_trail_is_complete_and_the_cli_reads_it(tmp_path):
    received, url = trade(tmp_path)
    check_trail(url, received)

    shown = cli(url, "show", "A2-X")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "NewOrderSingle ClOrdID=A2 " in lines[0]
    assert any("route post" in line for line in lines)
    assert any("OrderCancelRequest ClOrdID=A2-X" in line for line in lines)
    assert "ExecType=4" in lines[-1] and "OrdStatus=4" in lines[-1]
    assert "order reject: OrderQty (38) must be positive" in cli(url, "show", "BAD").stdout
    assert cli(url, "show", "NO-SUCH-ORDER").returncode == 1

    verified = cli(url, "verify")
    assert verified.returncode == 0 and "audit chain verified" in verified.stdout

    exported = cli(url, "export", "--format", "jsonl")
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    middle = rows[len(rows) // 2]["ts_ns"]
    from datetime import datetime, timezone

    since = datetime.fromtimestamp(middle // 1000 / 1e6, tz=timezone.utc).isoformat()
    later = cli(url, "export", "--format", "csv", "--from", since)
    assert later.returncode == 0
    # Record times need not follow seq (threads stamp them before they queue), so the expected records are
    # those stamped at or after the microsecond `since` names, wherever they sit in the chain.
    expected = [r["seq"] for r in rows if r["ts_ns"] >= middle // 1000 * 1000]
    assert 1 < len(expected) < len(rows)
    assert [int(row["seq"]) for row in csv.DictReader(io.StringIO(later.stdout))] == expected

    path = url[len("sqlite:///") :]
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE audit SET body = CAST(replace(body, '38=900', '38=9000') AS BLOB) "
            "WHERE instr(body, CAST('11=A1' || char(1) AS BLOB)) AND instr(body, CAST('38=900' AS BLOB))"
        )
    broken = cli(url, "verify")
    assert broken.returncode == 1 and "altered" in broken.stderr and "record" in broken.stderr
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM audit WHERE seq = 3")
    assert "record 3 is missing" in cli(url, "verify").stderr


def test_postgres_trail_is_complete_and_verifies(tmp_path, postgres_url):
    table = f"audit_{uuid.uuid4().hex[:12]}"  # one table per run: nothing shared between runs
    received, url = trade(tmp_path, {"url": postgres_url, "table": table})
    check_trail(url, received, table)
    assert cli(url, "--table", table, "verify").returncode == 0
    assert "NewOrderSingle ClOrdID=A2 " in cli(url, "--table", table, "show", "A2-X").stdout
    store = open_store(url, table)
    store.open()
    store._run(store._conn.execute(f"DROP TABLE {table}"))
    store.close()


def test_a_postgres_table_with_text_bodies_becomes_bytea_with_its_hashes_unchanged(postgres_url):  # noqa: F811
    table = f"audit_{uuid.uuid4().hex[:12]}"
    old = PostgresStore(postgres_url, table)
    old.open()
    conn = old._conn
    old._run(conn.execute(f"DROP TABLE {table}"))
    old._run(conn.execute(POSTGRES_SCHEMA.replace("BYTEA", "TEXT").format(table=table)))
    rows, prev = [], GENESIS
    for seq, body in enumerate(['{"boot":"b1","desk":"caf\u00e9"}', "8=FIX.4.4|35=D|11=C1|58=caf\u00e9|"], start=1):
        text = "\x1f".join((str(seq), "7", "fix_in", "S", "", "C1", body, prev))  # how text bodies were hashed
        rows.append((seq, 7, "fix_in", "S", None, "C1", body, prev, hashlib.sha256(text.encode()).hexdigest()))
        prev = rows[-1][-1]
    old._run(conn.executemany(f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", rows))
    old.close()
    try:
        writer = AuditWriter(PostgresStore(postgres_url, table))  # opening migrates the column
        writer.start()
        writer.commit([Entry("fix_in", b"8=FIX.4.4\x0135=D\x0111=C2\x01100=\xff\x01", "S", None, "C2", 8)])
        writer.stop()
        store = PostgresStore(postgres_url, table)
        store.open()
        records = list(store.records())
        assert store._run(store._conn.fetchval(BODY_TYPE, table)) == "bytea"
        assert first_break(records) is None
        assert [r.body for r in records[:2]] == [rows[0][6].encode(), rows[1][6].encode()]
        assert records[2].body.endswith(b"100=\xff\x01")
        assert cli(postgres_url, "--table", table, "verify").returncode == 0
    finally:
        store = PostgresStore(postgres_url, table)
        store.open()
        store._run(store._conn.execute(f"DROP TABLE {table}"))
        store.close()
