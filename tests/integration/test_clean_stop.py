"""A stop logs out of every session cleanly, whichever side stops, and the next logon resumes each sequence."""

from __future__ import annotations

from pathlib import Path

from gateway import topology
from gateway.config import FixConfig
from gateway.stack import Stack


def _messages(log: Path) -> list[dict[int, str]]:
    """quickfix's message log (both directions), as tag -> value per message."""
    out = []
    for line in log.read_text().splitlines():
        _, _, raw = line.partition(" : ")
        out.append({int(tag): value for tag, _, value in (f.partition("=") for f in raw.split("\x01") if f)})
    return out


def _runs(messages: list[dict[int, str]]) -> list[list[tuple[str, str]]]:
    """(sender, MsgType) of each message, one list per logon."""
    runs: list[list[tuple[str, str]]] = []
    for m in messages:
        if m[35] == "A" and (not runs or runs[-1][-1][1] != "A"):
            runs.append([])
        runs[-1].append((m[49], m[35]))
    return runs


def test_a_stop_logs_out_both_ways_and_the_next_logon_resumes_every_sequence(tmp_path):
    # No Heartbeat of quickfix's own within the test: every one here answers a stop's TestRequest.
    fix = {"store": "file", "heartbeat_interval": 30, "reconnect_interval": 1}
    gateway_fix = {**fix, "store_path": str(tmp_path / "gw-store"), "log_path": str(tmp_path / "gw-log")}
    venue_fix = FixConfig(**fix, store_path=tmp_path / "venue-store", log_path=tmp_path / "venue-log")

    def stack() -> Stack:
        gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides={"fix": gateway_fix})
        return Stack(gateway_cfg, venues_cfg.model_copy(update={"fix": venue_fix}), tmp_path)

    with stack() as first:  # the OMS logs out first, then the gateway of its venues: initiators stopping
        first.oms.new_order("P1", "MSFT", "2", 100, price="409.99", ex_destination="LITC")
        assert first.oms.wait_final("P1", 10) is not None
    with stack() as second:  # the gateway stops with the OMS still logged on: an acceptor stopping
        assert second.gateway is not None
        second.gateway.stop()
        second.gateway = None

    oms = _messages(tmp_path / "gw-log" / "FIX.4.4-OMS-SORGW.messages.current.log")
    # Then the OMS tries to log on again to the stopped gateway; only its stopped sessions matter here.
    oms = oms[: max(i for i, m in enumerate(oms) if m[35] == "5") + 1]
    venue = _messages(tmp_path / "venue-log" / "FIX.4.4-LITC-SORGW.messages.current.log")
    for messages in (oms, venue):
        # No resend asked, no gap filled, nothing rejected; every message numbered on from the last run's.
        assert {m[35] for m in messages} <= {"A", "0", "1", "5", "8", "D"}
        for sender in {m[49] for m in messages}:
            numbers = [int(m[34]) for m in messages if m[49] == sender]
            assert numbers == list(range(1, len(numbers) + 1)), sender
        # Two stops, each with its TestRequest and the Heartbeat answering it.
        assert [m.get(112) for m in messages if m[35] in ("0", "1")] == ["logout"] * 4
    stops = [("OMS", "SORGW"), ("SORGW", "OMS")]
    for run, (stopping, peer) in zip(_runs(oms), stops, strict=True):
        _assert_logged_out(run, stopping, peer)
    for run in _runs(venue):
        _assert_logged_out(run, "SORGW", "LITC")


def _assert_logged_out(run: list[tuple[str, str]], stopping: str, peer: str) -> None:
    """The side that stops asks for a Heartbeat, then logs out, and the peer answers both, in one side's view.

    The stopping side may send its Logout before the Heartbeat reaches it (any message it handles after
    log_out marked the session sends it), never before its TestRequest; the peer's Logout ends the run."""
    tail = run[-4:]
    assert sorted(tail) == sorted([(stopping, "1"), (peer, "0"), (stopping, "5"), (peer, "5")]), run
    assert tail.index((stopping, "1")) < tail.index((stopping, "5")), run
    assert tail[-1] == (peer, "5"), run
