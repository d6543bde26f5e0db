"""The keyed chain's rules and the writer's signed checkpoints: when they are written, where, and what a failure
does."""

from __future__ import annotations

import io
import json
import time

import pytest
import structlog
from structlog.testing import capture_logs

from gateway import config, logs
from gateway.audit import checkpoints, commands, writer as writer_module
from gateway.audit.records import GENESIS, Entry, chain, first_break
from gateway.audit.sqlite import SqliteStore
from gateway.audit.writer import AuditWriter
from gateway.metrics import Metrics

KEY = b"0123456789abcdef0123456789abcdef"


def entries(n: int) -> list[Entry]:
    return [Entry("event", f'{{"n":{i}}}'.encode(), ts_ns=i) for i in range(n)]


def test_a_keyed_chain_needs_its_key_and_refuses_plain_records_after_keyed_ones():
    plain = chain(entries(3), 1, GENESIS)
    keyed = chain(entries(3), 4, plain[-1].hash, KEY)
    assert first_break(plain + keyed, KEY) is None
    assert "record 4 is keyed" in first_break(plain + keyed)
    assert "contents do not match" in first_break(plain + keyed, b"x" * 32)
    downgraded = keyed[:1] + chain(entries(2), 5, keyed[0].hash)
    assert "record 5: unkeyed hash after keyed record 4" in first_break(plain + downgraded, KEY)
    assert "no record of 3 is keyed" in first_break(plain, KEY)
    assert first_break(plain) is None  # a trail written before keying still verifies without a key


@pytest.fixture
def captured(monkeypatch):
    """What the audit writer logs, info included (the tests run at warning; its logger may be cached already)."""
    logs.configure("info")
    with capture_logs() as events:
        monkeypatch.setattr(writer_module, "log", structlog.get_logger("gateway.audit"))
        yield events
    logs.configure("warning")


def test_checkpoints_follow_the_moving_head_and_every_stop(tmp_path, captured):
    path, metrics = tmp_path / "checkpoints", Metrics()
    writer = AuditWriter(
        SqliteStore(tmp_path / "audit.db"), metrics=metrics, key=KEY, checkpoint_path=path, checkpoint_interval_s=0.05
    )
    writer.start()
    writer.commit(entries(3))
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # idle: the head does not move, so no new checkpoint
    assert [c.seq for c in checkpoints.read(path, KEY)] == [3]
    writer.commit(entries(2))
    writer.stop()
    found = checkpoints.read(path, KEY)
    assert [c.seq for c in found] == [3, 5]
    store = SqliteStore(tmp_path / "audit.db")
    assert found[-1].hash == store.open()[1]
    store.close()
    assert metrics.audit_checkpoint_seq._value.get() == 5
    logged = [e for e in captured if e["event"] == "audit.checkpoint"]
    assert [(e["seq"], e["hash"]) for e in logged] == [(c.seq, c.hash) for c in found]
    line = json.loads(path.read_text().splitlines()[-1])
    assert line["mac"] == logged[-1]["mac"] == found[-1].signature(KEY)


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_trail(tmp_path, captured):
    blocked = tmp_path / "checkpoints"
    blocked.mkdir()  # a directory where the file should be
    writer = AuditWriter(
        SqliteStore(tmp_path / "audit.db"), key=KEY, checkpoint_path=blocked, checkpoint_interval_s=0.01
    )
    writer.start()
    for _ in range(5):
        writer.commit(entries(2))
        time.sleep(0.02)
    writer.stop()
    assert any(e["event"] == "audit.checkpoint_failed" for e in captured)
    store = SqliteStore(tmp_path / "audit.db")
    assert store.open()[0] == 10
    assert first_break(store.records(), KEY) is None
    store.close()


def test_checkpoints_need_the_key_and_the_key_its_variable():
    with pytest.raises(ValueError, match="set audit.hmac_key_env"):
        config.AuditConfig(checkpoint_path="var/audit/checkpoints")
    with pytest.raises(ValueError, match="signed with the audit key"):
        AuditWriter(SqliteStore("unused.db"), checkpoint_path="checkpoints")
    audit = config.AuditConfig(hmac_key_env="SORGW_AUDIT_KEY", checkpoint_path="var/audit/checkpoints")
    with pytest.raises(config.ConfigError, match="SORGW_AUDIT_KEY .* is not set"):
        audit.key({})
    with pytest.raises(config.ConfigError, match="at least 32"):
        audit.key({"SORGW_AUDIT_KEY": "too short"})
    assert audit.key({"SORGW_AUDIT_KEY": KEY.decode()}) == KEY
    assert config.AuditConfig().key({"SORGW_AUDIT_KEY": KEY.decode()}) is None


def test_verify_given_checkpoints_but_no_key_says_so_and_fails(tmp_path, capsys):
    path = tmp_path / "checkpoints"
    checkpoints.append(path, checkpoints.Checkpoint(1, GENESIS, 1), KEY)
    store = SqliteStore(tmp_path / "audit.db")
    with pytest.raises(RuntimeError, match="is not open"):
        store.append(chain(entries(1), 1, GENESIS))
    store.open()
    store.append(chain(entries(1), 1, GENESIS))
    assert commands.verify(store, None, path, out=io.StringIO()) == 1
    assert "checked with the audit key, and none was given" in capsys.readouterr().err
    store.close()
