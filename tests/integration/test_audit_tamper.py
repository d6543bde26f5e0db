"""Tamper evidence beyond the chain: a keyed chain and signed checkpoints catch truncation, a forged tail, a
re-hashed rewrite and a downgrade to unkeyed hashes, on SQLite and PostgreSQL, through `sorgw audit verify`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from gateway.audit.records import Entry, digest
from gateway.audit.stores import open_store
from gateway.audit.writer import AuditWriter
from tests.postgres import postgres_table, postgres_url  # noqa: F401 (fixtures)

KEY_ENV = "SORGW_TEST_AUDIT_KEY"
KEY = "k" * 16 + "0123456789abcdef0123456789abcdef"
ATTACKER_KEY = b"a" * 48


class Trail:
    """A real audit store the tests write with the real writer, tamper with in SQL, and verify with the CLI."""

    def __init__(self, url: str, table: str, checkpoint_path: Path) -> None:
        self.url, self.table, self.checkpoint_path = url, table, checkpoint_path
        self.runs = 0

    def write(self, count: int, keyed: bool = True, checkpoints: bool = True) -> None:
        """One gateway run: `count` entries, then a stop (which signs the head when checkpoints are on)."""
        writer = AuditWriter(
            open_store(self.url, self.table),
            key=KEY.encode() if keyed else None,
            checkpoint_path=self.checkpoint_path if checkpoints else None,
        )
        writer.start()
        self.runs += 1
        start = writer.records_at_start
        for i in range(start, start + count):
            body = f"8=FIX.4.4\x0135=D\x0111=C{i}\x0138=100\x0158=run {self.runs}\x01".encode()
            writer.commit([Entry("fix_in", body, "S", f"O{i}", f"C{i}", 1_000 + i)])
        writer.stop()

    def records(self) -> list:
        store = open_store(self.url, self.table)
        store.open()
        try:
            return list(store.records())
        finally:
            store.close()

    def sql(self, statement: str, *args) -> None:
        if self.url.startswith("sqlite:///"):
            import sqlite3

            with sqlite3.connect(self.url[len("sqlite:///") :]) as db:
                db.execute(statement.format(table="audit"), args)
            return
        numbered = iter(range(1, len(args) + 1))
        statement = re.sub(r"\?", lambda _: f"${next(numbered)}", statement.format(table=self.table))

        async def run() -> None:
            conn = await asyncpg.connect(self.url, timeout=5)
            try:
                await conn.execute(statement, *args)
            finally:
                await conn.close()

        asyncio.run(run())

    def rehash_from(self, seq: int, key: bytes | None, body: bytes | None = None) -> None:
        """What an attacker with write access does: change record seq (its body, when given) and re-hash it and
        everything after it, with key (None: plain SHA-256)."""
        records = self.records()
        prev = records[seq - 2].hash if seq > 1 else "0" * 64
        for r in records[seq - 1 :]:
            new_body = body if body is not None and r.seq == seq else r.body
            h = digest(r.seq, r.ts_ns, r.kind, r.session, r.order_id, r.cl_ord_id, new_body, prev, key)
            self.sql("UPDATE {table} SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?", new_body, prev, h, r.seq)
            prev = h

    def append_forged(self, key: bytes | None) -> None:
        last = self.records()[-1]
        seq, body = last.seq + 1, b"8=FIX.4.4\x0135=8\x0111=C0\x0132=100\x0131=1.00\x01"
        h = digest(seq, last.ts_ns + 1, "fix_out", "S", "O0", "C0", body, last.hash, key)
        self.sql(
            "INSERT INTO {table} (seq, ts_ns, kind, session, order_id, cl_ord_id, body, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            seq,
            last.ts_ns + 1,
            "fix_out",
            "S",
            "O0",
            "C0",
            body,
            last.hash,
            h,
        )

    def verify(self, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess:
        """`sorgw audit verify` with the key in KEY_ENV (key None: no key named at all)."""
        env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
        named = []
        if key is not None:
            env[KEY_ENV], named = key, ["--key-env", KEY_ENV]
        command = [
            sys.executable,
            "-m",
            "gateway.cli",
            "audit",
            "--url",
            self.url,
            "--table",
            self.table,
            *named,
            "verify",
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    def verify_checkpoints(self) -> subprocess.CompletedProcess:
        return self.verify("--checkpoint", str(self.checkpoint_path))


@pytest.fixture(params=["sqlite", "postgres"])
def trail(request, tmp_path) -> Trail:
    if request.param == "sqlite":
        return Trail(f"sqlite:///{tmp_path / 'audit.db'}", "audit", tmp_path / "checkpoints")
    return Trail(
        request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_table"), tmp_path / "checkpoints"
    )


def broken(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_an_untouched_keyed_trail_verifies_with_its_checkpoints(trail):
    trail.write(6)
    trail.write(4)
    trail.write(3, checkpoints=False)  # a run that died before its stop: its records are past the last checkpoint
    result = trail.verify_checkpoints()
    assert result.returncode == 0, result.stderr
    assert "13 records, keyed (HMAC-SHA256) from record 1" in result.stdout
    assert "checkpoints: 2 held, the last at record 10" in result.stdout and "3 records after it" in result.stdout
    assert all(r.hash.startswith("hmac-sha256:") for r in trail.records())
    broken(trail.verify(key=None), "record 1 is keyed", "no key was given")


def test_truncation_of_the_newest_records_is_found(trail):
    trail.write(8)
    trail.sql("DELETE FROM {table} WHERE seq > ?", 5)
    assert trail.verify().returncode == 0  # the chain alone cannot see it
    broken(trail.verify_checkpoints(), "truncated: checkpoint 1 names record 8, but the trail ends at record 5")


def test_truncation_hidden_by_later_records_is_found(trail):
    trail.write(8)
    trail.sql("DELETE FROM {table} WHERE seq > ?", 5)
    trail.write(5, checkpoints=False)  # the gateway restarts on the truncated table: seqs 6..10 again, validly keyed
    assert trail.verify().returncode == 0
    broken(trail.verify_checkpoints(), "record 8 does not match checkpoint 1's hash (rewritten)")


def test_a_forged_tail_is_found(trail):
    trail.write(5)
    trail.append_forged(ATTACKER_KEY)  # past the last checkpoint, with a key of the attacker's own
    broken(trail.verify_checkpoints(), "record 6: contents do not match its hash")
    trail.sql("DELETE FROM {table} WHERE seq = ?", 6)
    trail.append_forged(None)  # or with the plain digest anyone can compute
    broken(trail.verify_checkpoints(), "record 6: unkeyed hash after keyed record 1", "downgraded")


def test_a_rehashed_rewrite_is_found(trail):
    trail.write(8)
    forged = b"8=FIX.4.4\x0135=D\x0111=C3\x0138=900\x01"
    trail.rehash_from(4, ATTACKER_KEY, forged)  # without the key: the MACs do not verify
    broken(trail.verify(), "record 4: contents do not match its hash (altered)")
    trail.rehash_from(4, KEY.encode(), forged)  # even with the key (an insider): the checkpoint outside catches it
    assert trail.verify().returncode == 0
    broken(trail.verify_checkpoints(), "record 8 does not match checkpoint 1's hash (rewritten)")


def test_a_rewrite_of_records_written_before_keying_is_found(trail):
    trail.write(5, keyed=False, checkpoints=False)  # the trail of a gateway before keying
    trail.write(3)
    assert trail.verify_checkpoints().returncode == 0
    assert "keyed (HMAC-SHA256) from record 6" in trail.verify_checkpoints().stdout
    trail.rehash_from(3, None, b"8=FIX.4.4\x0135=D\x0111=C2\x0138=900\x01")  # plain all the way, keyed ones too
    broken(trail.verify(), "no record of 8 is keyed: downgraded")
    broken(trail.verify_checkpoints(), "downgraded")


def test_a_downgrade_to_unkeyed_hashes_is_found(trail):
    trail.write(6)
    trail.rehash_from(4, None)  # the same contents, hashes anyone can recompute from record 4 on
    broken(trail.verify(), "record 4: unkeyed hash after keyed record 1 (downgraded")
    trail.rehash_from(1, None)  # the whole trail made to look written before keying
    broken(trail.verify(), "no record of 6 is keyed: downgraded")
    broken(trail.verify_checkpoints(), "downgraded")


def test_an_altered_checkpoint_file_is_refused(trail):
    trail.write(6)
    trail.sql("DELETE FROM {table} WHERE seq > ?", 3)
    # The attacker lowers the checkpoint to match the truncated table; its MAC no longer holds.
    text = trail.checkpoint_path.read_text()
    trail.checkpoint_path.write_text(text.replace('"seq":6', '"seq":3'))
    broken(trail.verify_checkpoints(), "checkpoint line 1 is not signed with this key")


def test_verify_needs_a_usable_key(trail):
    trail.write(2)
    missing = trail.verify("--checkpoint", str(trail.checkpoint_path), key=None)
    assert missing.returncode == 2 and "--checkpoint needs the audit key" in missing.stderr
    unset = trail.verify(key="")
    assert unset.returncode == 2 and f"{KEY_ENV} (the audit HMAC key) is not set" in unset.stderr
    short = trail.verify(key="short")
    assert short.returncode == 2 and "needs at least 32" in short.stderr
