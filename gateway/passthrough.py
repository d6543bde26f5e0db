"""A do-nothing FIX pass-through on the gateway's own session settings: the floor `sorgw bench --e2e` compares to.

It reads a gateway config (upstream acceptor, venue initiators, fix settings), forwards every order message the OMS
sends to the venue its ExDestination names under a ClOrdID of its own (an order without one: split evenly across
the first `split` venues), and every report a venue sends back under the OMS's ClOrdID, on quickfix's callback
thread: no routing, state, audit, metrics or logging per message.
Run it as `python -m gateway.passthrough --config FILE [--split K] --work-dir DIR`.
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
_REPLACED = "5"
READY = "passthrough.ready"


def body_fields(message: codec.Readable) -> list[tuple[int, str]]:
    """The message's body fields in wire order (header and trailer left out)."""
    out = []
    for part in message.toString().split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and int(tag) not in _HEADER_TAGS:
            out.append((int(tag), value))
    return out


def _quantity(message: codec.Readable) -> int | None:
    if not message.isSetField(codec.ORDER_QTY):
        return None
    try:
        return int(message.getField(codec.ORDER_QTY))
    except ValueError:
        raise fix.IncorrectTagValue(codec.ORDER_QTY) from None


class PassThrough(GuardedApplication):
    """One upstream session, one session per venue; ClOrdIDs mapped both ways, forgotten once an order ends."""

    role = "passthrough"

    def __init__(self, cfg: config.GatewayConfig, work_dir: Path, split: int = 1) -> None:
        super().__init__()
        up = cfg.upstream.sessions[0]
        upstream = SessionSpec(
            up.begin_string, up.sender_comp_id, up.target_comp_id, cfg.upstream.host, cfg.upstream.port
        )
        venues = {v.name: SessionSpec(v.begin_string, v.sender_comp_id, v.target, v.host, v.port) for v in cfg.venues}
        self.upstream = session_key(session_id(upstream))
        self.venue_sessions = {name: session_key(session_id(spec)) for name, spec in venues.items()}
        if not 1 <= split <= len(cfg.venues):
            raise ValueError(f"split {split}: expected 1 to {len(cfg.venues)} (the venues configured)")
        self.split_venues = [v.name for v in cfg.venues[:split]]
        self._ids = itertools.count(1)
        self._to_child: dict[str, list[tuple[str, str]]] = {}  # OMS ClOrdID -> [(venue session, our ClOrdID)]
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

    @property
    def mapped(self) -> int:
        """ClOrdIDs still held in either direction: 0 once every order has ended."""
        return len(self._to_parent) + len(self._to_child)

    def on_logon(self, session: str) -> None:
        self._logged_on.add(session)
        if set(self.venue_sessions.values()) <= self._logged_on:
            self._ready.set()

    def on_logout(self, session: str) -> None:
        self._logged_on.discard(session)

    def on_app(self, message: codec.Readable, session: str) -> None:
        msg_type = message.getHeader().getField(codec.MSG_TYPE)
        if session == self.upstream:
            if msg_type not in _ORDER_TYPES:
                raise fix.UnsupportedMessageType()
            self._to_venue(msg_type, message)
        elif msg_type in _REPORT_TYPES:
            self._to_oms(msg_type, message)

    def _to_venue(self, msg_type: str, message: codec.Readable) -> None:
        parent = message.getField(codec.CL_ORD_ID)
        orig: list[tuple[str, str]] = []
        if message.isSetField(codec.ORIG_CL_ORD_ID):  # cancel or replace: to each of the order's children
            orig = self._to_child.get(message.getField(codec.ORIG_CL_ORD_ID), [])
            if not orig:
                raise fix.IncorrectTagValue(codec.ORIG_CL_ORD_ID)
            legs = [session for session, _ in orig]
        elif message.isSetField(codec.EX_DESTINATION):
            target = self.venue_sessions.get(message.getField(codec.EX_DESTINATION))
            if target is None:
                raise fix.IncorrectTagValue(codec.EX_DESTINATION)
            legs = [target]
        else:
            legs = [self.venue_sessions[name] for name in self.split_venues]
        qty = _quantity(message)
        if qty is not None and qty < len(legs):
            raise fix.IncorrectTagValue(codec.ORDER_QTY)
        children = [(target, f"P{next(self._ids)}") for target in legs]
        for _, child in children:  # known before any venue can answer
            self._to_parent[child] = parent
        self._to_child[parent] = children
        for i, (target, child) in enumerate(children):
            out = self._copy(msg_type, message, self.begin_string(target))
            out.setField(codec.CL_ORD_ID, child)
            if orig:
                out.setField(codec.ORIG_CL_ORD_ID, orig[i][1])
            if qty is not None:  # an even split, the remainder on the first legs
                out.setField(codec.ORDER_QTY, str(qty // len(legs) + (i < qty % len(legs))))
            self.send(out, target)

    def _to_oms(self, msg_type: str, message: codec.Readable) -> None:
        child = message.getField(codec.CL_ORD_ID)
        parent = self._to_parent.get(child)
        if parent is None:
            return  # not one of ours (sent before a restart): nothing upstream waits for it
        out = self._copy(msg_type, message, self.begin_string(self.upstream))
        out.setField(codec.CL_ORD_ID, parent)
        orig = message.getField(codec.ORIG_CL_ORD_ID) if message.isSetField(codec.ORIG_CL_ORD_ID) else None
        if orig is not None:
            out.setField(codec.ORIG_CL_ORD_ID, self._to_parent.get(orig, "NONE"))
        if msg_type == "8":
            final = message.getField(codec.ORD_STATUS) in _FINAL
            if final:
                self._forget(child)
            if orig is not None and (final or message.getField(codec.EXEC_TYPE) == _REPLACED):
                self._forget(orig)  # canceled or replaced: the order it replaced is done
        else:
            self._forget(child)  # a cancel reject: that request is over
        self.send(out, self.upstream)

    def _forget(self, child: str) -> None:
        """Drop a finished child, and its parent's entry once none of the parent's children is left."""
        parent = self._to_parent.pop(child, None)
        if parent is not None and all(c not in self._to_parent for _, c in self._to_child.get(parent, [])):
            self._to_child.pop(parent, None)

    @staticmethod
    def _copy(msg_type: str, message: codec.Readable, begin_string: str) -> fix.Message:
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
    parser.add_argument("--split", type=int, default=1, help="venues an order without ExDestination is split across")
    parser.add_argument("--logon-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        cfg = config.load(args.config, config.GatewayConfig)
        app = PassThrough(cfg, args.work_dir, args.split)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            app.start(args.logon_timeout)
        except BaseException:
            app.stop()
            raise
    except (config.ConfigError, OSError, ValueError, TimeoutError, fix.ConfigError, fix.RuntimeError) as exc:
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
