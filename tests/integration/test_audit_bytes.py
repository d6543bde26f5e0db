"""Whatever bytes an OMS sends, over a real FIX socket: a clean reject or a normal answer, the gateway keeps
answering, the audit trail keeps the exact bytes, and the next start recovers from that trail."""

from __future__ import annotations

import pytest

from gateway import topology
from gateway.app import start_gateway
from gateway.audit.records import first_break
from gateway.audit.stores import open_store
from gateway.stack import Stack
from tests.raw_fix import RawFixClient

pytestmark = pytest.mark.integration


def _fix_stored(cfg) -> dict:
    return {
        "fix": {"store": "file", "store_path": str(cfg / "gw-store"), "heartbeat_interval": 5, "reconnect_interval": 1}
    }


def _client(cfg) -> RawFixClient:
    session = cfg.upstream.sessions[0]
    client = RawFixClient(cfg.upstream.host, cfg.upstream.port, session.target_comp_id, session.sender_comp_id)
    client.logon()
    return client


def _final(client: RawFixClient, cl_ord_id: bytes) -> dict[int, bytes] | None:
    client.wait(lambda: any(m.get(39) in (b"2", b"4", b"8", b"C") for m in client.answers(cl_ord_id)), 10)
    return next((m for m in reversed(client.answers(cl_ord_id)) if m.get(39) in (b"2", b"4", b"8", b"C")), None)


def test_bad_bytes_get_clean_rejects_the_trail_keeps_them_and_the_next_start_recovers(tmp_path):
    gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides=_fix_stored(tmp_path))
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        stack.oms.stop()
        stack.oms = None
        oms = _client(gateway_cfg)
        try:
            oms.new_order(b"PIPE", extra={58: b"desk A|note"})  # a | in free text is data
            assert _final(oms, b"PIPE")[39] == b"2"

            oms.new_order(b"UTF8", extra={100: b"\xff\xfe"})
            rejected = _final(oms, b"UTF8")
            assert rejected[39] == b"8" and rejected[150] == b"8"
            assert rejected[58] == b"ExDestination (100) is not valid UTF-8"

            oms.new_order(b"BIG", price=b"1" * 400)
            rejected = _final(oms, b"BIG")
            assert rejected[39] == b"8"
            assert rejected[58] == b"Price (44) has more than 12 digits before the decimal point"

            oms.new_order(b"ID\xff")  # a ClOrdID that cannot be echoed: a session reject naming the tag
            assert oms.wait(lambda: any(m.get(371) == b"11" for m in oms.session_rejects()), 10)

            oms.new_order(b"TEXT", extra={58: b"caf\xe9"})  # free text that is not UTF-8: kept, never echoed
            assert _final(oms, b"TEXT")[39] == b"2"

            # Still answering: the next order, and a TestRequest.
            oms.new_order(b"NEXT")
            assert _final(oms, b"NEXT")[39] == b"2"
            oms.send(b"1", {112: b"still-there"})
            assert oms.wait(lambda: any(m.get(35) == b"0" and m.get(112) == b"still-there" for m in oms.received), 10)
            assert stack.gateway.audit.writable
        finally:
            oms.close()

    store = open_store(gateway_cfg.audit.url)
    store.open()
    records = list(store.records())
    store.close()
    assert first_break(records) is None
    inbound = [r.body for r in records if r.kind == "fix_in" and b"\x0135=D\x01" in r.body]
    for exact in (
        b"\x0158=desk A|note\x01",
        b"\x01100=\xff\xfe\x01",
        b"\x0111=ID\xff\x01",
        b"\x0158=caf\xe9\x01",
        b"\x0144=" + b"1" * 400 + b"\x01",
    ):
        assert any(exact in body for body in inbound), exact

    # The next start replays that trail (recovery parses the stored bytes) and comes up.
    again = start_gateway(gateway_cfg, tmp_path / "gateway-again")
    try:
        assert again.inspect(lambda engine: {p.cl_ord_id for p in engine.parents.values()}) >= {"PIPE", "TEXT", "NEXT"}
    finally:
        again.stop()
