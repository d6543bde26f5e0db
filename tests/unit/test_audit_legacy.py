"""Trails written before the audit hot path was made cheaper still verify, and the same entries hash and encode
byte for byte as they did: fixtures/audit_trail_ec589b2.json was written by main at ec589b2 from `trail_entries()`
(a plain writer, then a keyed one on the same SQLite file) and holds `json_values()` as that to_json encoded them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path

import pytest

from gateway.audit import entries
from gateway.audit.records import GENESIS, Entry, Record, chain, first_break
from gateway.audit.sqlite import SqliteStore

FIXTURE = Path(__file__).parent / "fixtures" / "audit_trail_ec589b2.json"
KEY = "legacy-trail-key-legacy-trail-key"
KEY_ENV = "SORGW_TEST_LEGACY_AUDIT_KEY"
PLAIN = 6  # the first PLAIN entries were written without the key


class Colour(Enum):
    RED = "r"


@dataclass(frozen=True)
class Nested:
    price: Decimal
    colour: Colour
    tags: frozenset[str]
    derived: int = field(init=False, default=7)  # not an init field: not on the trail


def json_values() -> list:
    """Values covering every way to_json turns a value into JSON."""
    return [
        {"event": "timer", "now_ns": 1_700_000_000_000_000_123},
        {"b": [1.5, None, True, False], "a": 'é \x00 \u2028 "q" \\', "c": Decimal("100.010"), "s": {3, 1, 2}},
        Nested(Decimal("-0.0020"), Colour.RED, frozenset({"y", "x"})),
        {"venues": {"LITB": (None, Decimal("100.02")), "LITA": (Decimal("99.99"), Decimal("100.01"))}},
        [Nested(Decimal("1E+2"), Colour.RED, frozenset()), {"nested": {"deeper": [Colour.RED, 2**70]}}],
        "a plain string",
        -12,
        0.1,
        None,
    ]


def trail_entries() -> list[Entry]:
    """FIX messages (SOH, bytes that are not UTF-8), JSON bodies, and text columns that need escaping."""
    order = b"8=FIX.4.4\x019=120\x0135=D\x0134=2\x0149=OMS\x0156=SORGW\x0111=A1\x0138=100\x0140=2\x0144=99.00\x01"
    report = b"8=FIX.4.4\x019=99\x0135=8\x0111=A1\x0158=caf\xe9 | \xff\x0110=000\x01"
    ts = 1_700_000_000_000_000_000
    made = [
        Entry("config", entries.to_json({"sha256": "ab" * 32, "audit": {"url": "sqlite:///x"}}), ts_ns=ts),
        Entry("fix_in", order, "FIX.4.4:SORGW->OMS", None, "A1", ts + 1),
        Entry("fix_out", report, "FIX.4.4:SORGW->OMS", "b-O1", "A1", ts + 2),
        Entry("state", entries.to_json(json_values()[2]), None, "b-O1", "A1", ts + 3),
        Entry("event", entries.to_json(json_values()[0]), "sess\x00ion \udcff é", "ord\x00", "cl\udce9", ts + 3),
        Entry("notice", b"", None, None, None, 0),
    ]
    return made + [
        Entry("config", entries.to_json({"keyed": True}), ts_ns=ts + 10),
        Entry("fix_in", order.replace(b"A1", b"A2"), "FIX.4.4:SORGW->OMS", None, "A2", ts + 11),
        Entry("mark", entries.to_json(json_values()[3]), "FIX.4.4:SORGW->OMS", "b-O2", "A2", ts + 12),
        Entry("fix_out", report.replace(b"A1", b"A2"), "FIX.4.2:SORGW->OMS2", "b-O2", "A2", ts + 13),
    ]


def _fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def _records() -> list[Record]:
    return [Record(*row[:6], base64.b64decode(row[6]), *row[7:]) for row in _fixture()["records"]]


def test_to_json_encodes_every_value_as_before():
    for value, before in zip(json_values(), _fixture()["json"], strict=True):
        assert entries.to_json(value) == before.encode()


def test_the_same_entries_chain_to_the_same_hashes():
    records = _records()
    assert [r.kind for r in records] == [e.kind for e in trail_entries()]
    plain = chain(trail_entries()[:PLAIN], 1, GENESIS)
    keyed = chain(trail_entries()[PLAIN:], PLAIN + 1, plain[-1].hash, KEY.encode())
    assert plain + keyed == records


@pytest.fixture
def legacy_store(tmp_path):
    """The fixture's rows in an SQLite trail, as the old gateway left them."""
    store = SqliteStore(tmp_path / "legacy.db")
    store.open()
    store.append(_records())
    yield store
    store.close()


def test_a_trail_written_by_the_old_code_verifies(legacy_store):
    assert first_break(legacy_store.records(), KEY.encode()) is None
    assert "record 7 is keyed" in first_break(legacy_store.records())
    env = {**os.environ, KEY_ENV: KEY}
    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "--url", f"sqlite:///{legacy_store.path}"]
        + ["--key-env", KEY_ENV, "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert verified.returncode == 0 and "audit chain verified" in verified.stdout, verified.stderr


def test_new_records_continue_an_old_trail_and_tampering_in_it_is_still_found(legacy_store):
    from gateway.audit.writer import AuditWriter

    legacy_store.close()
    writer = AuditWriter(SqliteStore(legacy_store.path), key=KEY.encode())
    writer.start()
    writer.commit(trail_entries()[PLAIN:])
    writer.stop()
    legacy_store.open()
    records = list(legacy_store.records())
    assert len(records) == len(trail_entries()) + len(trail_entries()) - PLAIN
    assert first_break(records, KEY.encode()) is None
    altered = records[:2] + [records[2]._replace(body=records[2].body.replace(b"\xff", b"\xfe"))] + records[3:]
    assert first_break(altered, KEY.encode()) == "record 3: contents do not match its hash (altered)"
