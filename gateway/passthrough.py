"""A do-nothing FIX pass-through on the gateway's own session settings: the floor `sorgw bench --e2e` compares to.

It reads a gateway config (upstream acceptor, venue initiators, fix settings), forwards every order message the OMS
sends to the venue its ExDestination names (the first venue without one) under a ClOrdID of its own, and every
report a venue sends back under the OMS's ClOrdID, on quickfix's callback thread: no routing, state, audit,
metrics or logging per message. Run it as `python -m gateway.passthrough --config FILE --work-dir DIR`.
"""
from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from pathlib import Path

import quickfix as fix

from gateway import config
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.sessions import SessionSpec, make_engine, session_id, session_key, shutdown

_HEADER_TAGS = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 97, 122})
_ORDER_TYPES = frozenset({"D", "F", "G", "H"})
_REPORT_TYPES = frozenset({"8", "9"})
_FINAL = frozenset({"2", "3", "4", "8", "C"})
READY = "passthrough.ready"


def body_fields(message: fix.Message) -> list[tuple[int, str]]:
    """The message's body fields in wire order (header and trailer left out)."""
    out = []
    for part in message.toString().split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and int(tag) not in _HEADER_TAGS:
            out.append((int(tag), value))
    return out


class PassThrough(GuardedApplication):
    """One upstream session, one session per venue; ClOrdIDs mapped both ways, forgotten once an order ends."""

    role = "passthrough"

    def __init__(self, cfg: config.GatewayConfig, work_dir: Path) -> None:
        super().__init__()
        up = cfg.upstream.sessions[0]
        upstream = SessionSpec(up.begin_string, up.sender_comp_id, up.target_comp_id, cfg.upstream.host,
                               cfg.upstream.port)
        venues = {v.name: SessionSpec(v.begin_string, v.sender_comp_id, v.target, v.host, v.port) for v in cfg.venues}
        self.upstream = session_key(session_id(upstream))
        self.venue_sessions = {name: session_key(session_id(spec)) for name, spec in venues.items()}
        self.default_venue = cfg.venues[0].name
        self._ids = itertools.count(1)
        self._to_child: dict[str, str] = {}  # OMS ClOrdID -> ours
        self._to_parent: dict[str, str] = {}  # ours -> OMS ClOrdID
        self._logged_on: set[str] = set()
        self._ready = threading.Event()
        self._acceptor = make_engine("acceptor", self, [upstream], cfg.fix, work_dir / "upstream")
        self._initiator = make_engine("initiator", self, list(venues.values()), cfg.fix, work_dir / "venues")

    def start(self, timeout: float) -> None:
        """Log on to every venue, then accept the OMS."""
        self._initiator.start()
        if not self._ready.wait(timeout):
            missing = sorted(set(self.venue_sessions.values()) - self._logged_on)
            raise TimeoutError(f"venue sessions not logged on within {timeout:g} s: {', '.join(missing)}")
        self._acceptor.start()

    def stop(self) -> None:
        shutdown(self._acceptor, [s for k, s in self.sessions.items() if k == self.upstream])
        shutdown(self._initiator, [s for k, s in self.sessions.items() if k != self.upstream])
        self._acceptor = self._initiator = None

    def on_logon(self, session: str) -> None:
        self._logged_on.add(session)
        if set(self.venue_sessions.values()) <= self._logged_on:
            self._ready.set()

    def on_logout(self, session: str) -> None:
        self._logged_on.discard(session)

    def on_app(self, message: fix.Message, session: str) -> None:
        msg_type = message.getHeader().getField(codec.MSG_TYPE)
        if session == self.upstream:
            if msg_type not in _ORDER_TYPES:
                raise fix.UnsupportedMessageType()
            self._to_venue(msg_type, message)
        elif msg_type in _REPORT_TYPES:
            self._to_oms(msg_type, message)

    def _to_venue(self, msg_type: str, message: fix.Message) -> None:
        venue = message.getField(codec.EX_DESTINATION) if message.isSetField(codec.EX_DESTINATION) \
            else self.default_venue
        target = self.venue_sessions.get(venue)
        if target is None:
            raise fix.IncorrectTagValue(codec.EX_DESTINATION)
        out = self._copy(msg_type, message, self.begin_string(target))
        parent = message.getField(codec.CL_ORD_ID)
        child = f"P{next(self._ids)}"
        self._to_child[parent], self._to_parent[child] = child, parent
        out.setField(codec.CL_ORD_ID, child)
        if message.isSetField(codec.ORIG_CL_ORD_ID):
            out.setField(codec.ORIG_CL_ORD_ID, self._to_child.get(message.getField(codec.ORIG_CL_ORD_ID), "NONE"))
        self.send(out, target)

    def _to_oms(self, msg_type: str, message: fix.Message) -> None:
        child = message.getField(codec.CL_ORD_ID)
        parent = self._to_parent.get(child)
        if parent is None:
            return  # not one of ours (sent before a restart): nothing upstream waits for it
        out = self._copy(msg_type, message, self.begin_string(self.upstream))
        out.setField(codec.CL_ORD_ID, parent)
        if message.isSetField(codec.ORIG_CL_ORD_ID):
            out.setField(codec.ORIG_CL_ORD_ID, self._to_parent.get(message.getField(codec.ORIG_CL_ORD_ID), "NONE"))
        if msg_type == "8" and message.getField(codec.ORD_STATUS) in _FINAL:
            del self._to_parent[child]
            if self._to_child.get(parent) == child:
                del self._to_child[parent]
        self.send(out, self.upstream)

    @staticmethod
    def _copy(msg_type: str, message: fix.Message, begin_string: str) -> fix.Message:
        out = fix.Message()
        out.getHeader().setField(fix.BeginString(begin_string))
        out.getHeader().setField(fix.MsgType(msg_type))
        for tag, value in body_fields(message):
            out.setField(tag, value)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.passthrough", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="a gateway config: upstream, venues, fix")
    parser.add_argument("--work-dir", type=Path, default=Path("var/passthrough"))
    parser.add_argument("--logon-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        cfg = config.load(args.config, config.GatewayConfig)
        app = PassThrough(cfg, args.work_dir)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            app.start(args.logon_timeout)
        except BaseException:
            app.stop()
            raise
    except (config.ConfigError, OSError, TimeoutError, fix.ConfigError, fix.RuntimeError) as exc:
        print(f"passthrough: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(READY, flush=True)
    try:
        stop.wait()
    finally:
        app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
