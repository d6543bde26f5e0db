"""The seeded world: an OMS, two lit venues and a dark pool, the gateway process, crashes on a schedule, and the
invariants checked.

Everything random comes from one `random.Random(seed)`: the same seed replays the same run,
crash for crash. A crash kills the gateway process at a step boundary (see process.py): the
trail and the FIX stores survive, a random prefix of what was in flight to each peer arrives,
everything else of the process is gone. Then a new process starts with a new id prefix.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass, field

from gateway.audit.records import first_break
from gateway.core.clock import ManualClock
from tests.recovery_sim.fixlayer import TRACE, Endpoint, Store, connect
from tests.recovery_sim.peers import Fill, Oms, Venue
from tests.recovery_sim.process import OMS, VENUES, Gateway, Trail

MS = 1_000_000
CREATED = "20260101-00:00:00"


class Crash(Exception):
    """The gateway process dies here (SIGKILL)."""


@dataclass
class Faults:
    """Counts step boundaries and crashes the process at the scheduled ones."""

    at: deque[int]
    count: int = 0
    armed: bool = True
    starting: bool = False  # inside start(): replay and recovery's own resends
    crashes: list[str] = field(default_factory=list)

    def point(self, name: str) -> None:
        self.count += 1
        if self.armed and self.at and self.count >= self.at[0]:
            self.at.popleft()
            self.crashes.append(f"{'start:' if self.starting else ''}{name}@{self.count}")
            if TRACE:
                print(f"CRASH {self.crashes[-1]}")
            raise Crash(name)


class World:
    def __init__(self, seed: int, crashes: int = 10, orders: int = 4, max_gap: int = 30) -> None:
        self.seed = seed
        self.rng = rng = random.Random(seed)
        self.violations: list[str] = []
        self.clock = ManualClock()
        self.trail = Trail()
        keys = [OMS, *VENUES.values()]
        self.gateway_stores = {key: Store(CREATED) for key in keys}
        self.oms = Oms(rng, self.violations.append)
        self.venues = {name: Venue(name, rng, self.violations.append) for name in VENUES}
        self.oms.endpoint = Endpoint("OMS", Store(CREATED), self.oms.on_app, False, self.violations.append)
        for name, venue in self.venues.items():
            venue.endpoint = Endpoint(name, Store(CREATED), venue.on_app, True, self.violations.append)
        self.peers = {OMS: self.oms.endpoint, **{key: self.venues[name].endpoint for name, key in VENUES.items()}}
        schedule, at = deque(), 0
        for _ in range(crashes):
            at += rng.randint(1, max_gap)
            schedule.append(at)
        self.faults = Faults(schedule)
        self.orders = orders
        self.boots = 0
        self.gateway: Gateway = self._start()

    # --- the process ----------------------------------------------------------------------

    def _start(self) -> Gateway:
        while True:
            self.boots += 1
            self.clock.advance(MS)
            gateway = Gateway(
                f"b{self.boots}", self.trail, self.gateway_stores, self.clock, self.faults.point, self.violations.append
            )
            self.faults.starting = True
            try:
                gateway.start()
                return gateway
            except Crash:
                continue
            finally:
                self.faults.starting = False

    def _crash(self) -> None:
        for key, peer in self.peers.items():
            self._cut(key, lost=self.rng.randint(0, len(peer.inbox)))
        self.gateway = self._start()

    def _cut(self, key: str, lost: int) -> None:
        """The connection of one session ends: the last `lost` messages to the peer never arrive, nothing in
        flight to the gateway does (the peer has them stored and resends them on the next logon)."""
        ours, peer = self.gateway.sessions[key], self.peers[key]
        if ours.other is None and peer.other is None:
            return
        for _ in range(min(lost, len(peer.inbox))):
            peer.inbox.pop()
        peer.other = None
        while peer.inbox:
            peer.receive_one()
        peer.disconnected()
        ours.inbox.clear()
        ours.disconnected()

    def _act(self, action) -> None:
        try:
            action()
        except Crash:
            self._crash()

    # --- running ----------------------------------------------------------------------------

    def run(self, actions: int = 400) -> list[str]:
        """Drive the world, then let it settle with no more crashes; return every invariant that broke."""
        for _ in range(actions):
            if not self.faults.at and len(self.oms.orders) >= self.orders:
                break
            self._act(self._choose())
        self.faults.armed = False
        self._settle()
        return self.violations + self._check()

    def _choose(self):
        gw, oms = self.gateway, self.oms
        choices = []
        busy = [e for e in [*gw.sessions.values(), *self.peers.values()] if e.inbox]
        if busy:
            choices.append((12, lambda: self.rng.choice(busy).receive_one()))
        if gw.control:
            choices.append((3, lambda: gw.control.popleft()()))
        if gw.queued:
            choices.append((2, gw.flush))
        down = [key for key, ours in gw.sessions.items() if ours.other is None]
        if down:
            choices.append((3, lambda: self._connect(self.rng.choice(down))))
        else:
            choices.append((0.2, lambda: self._cut(self.rng.choice(list(gw.sessions)), self.rng.randint(0, 2))))
        if len(oms.orders) < self.orders:
            choices.append((2, oms.new_order))
        live = oms.open_orders()
        if live:
            choices.append((1, lambda: self.rng.choice([oms.cancel, oms.replace])(self.rng.choice(live))))
        resting = [(v, o) for v in self.venues.values() for o in v.resting()]
        if resting:
            choices.append((2, lambda: self._fill(*self.rng.choice(resting))))
        choices.append((1, lambda: gw.tick(self.rng.choice([MS, 100 * MS, 1000 * MS, 6000 * MS]))))
        weights, actions = zip(*choices)
        return self.rng.choices(actions, weights)[0]

    @staticmethod
    def _fill(venue: Venue, order) -> None:
        venue.fill(order)

    def _connect(self, key: str) -> None:
        ours, peer = self.gateway.sessions[key], self.peers[key]
        if key == OMS:
            connect(peer, ours)
        else:
            connect(ours, peer)

    def _settle(self, rounds: int = 12) -> None:
        """No more crashes: every session up, every message delivered, the OMS cancels what still works."""
        for _ in range(rounds):
            self._quiesce()
            if all(o.done for o in self.oms.orders.values()) and not any(v.resting() for v in self.venues.values()):
                return
            for order in self.oms.open_orders():
                self.oms.cancel(order)
            self._quiesce()
            self.gateway.tick(6000 * MS)  # children nobody answered are asked about

    def _quiesce(self) -> None:
        gw = self.gateway
        for key, ours in gw.sessions.items():
            if ours.other is None:
                self._connect(key)
        for _ in range(100_000):
            busy = [e for e in [*gw.sessions.values(), *self.peers.values()] if e.inbox]
            if busy:
                busy[0].receive_one()
            elif gw.control:
                gw.control.popleft()()
            elif gw.queued:
                gw.flush()
            else:
                return
        self.violations.append("the sessions never went quiet")

    # --- invariants -------------------------------------------------------------------------

    def _check(self) -> list[str]:
        problems = []
        broken = first_break(self.trail.records)
        if broken:
            problems.append(f"audit chain: {broken}")
        at_venues = Counter(fill for venue in self.venues.values() for _, fill in venue.executions)
        at_oms = Counter(fill for fills in self.oms.fills.values() for fill in fills)
        if at_venues != at_oms:
            problems.append(
                f"venue executions never reported upstream: {dict(at_venues - at_oms)}; "
                f"reported upstream but not executed (or twice): {dict(at_oms - at_venues)}"
            )
        engine = self.gateway.engine
        by_order: dict[str, Counter[Fill]] = {}
        for venue in self.venues.values():
            for cl, fill in venue.executions:
                parent = engine.parent_of_child(cl) or self.trail.child_parent.get(cl)
                by_order.setdefault(parent, Counter())[fill] += 1
        for root, order in self.oms.orders.items():
            if not order.done:
                problems.append(f"parent {root} stuck at OMS: status {order.status}, CumQty {order.cum}")
            if order.cum > order.qty:
                problems.append(f"parent {root} overfilled: {order.cum} of {order.qty}")
            if order.order_id is not None and by_order.get(order.order_id, Counter()) != Counter(self.oms.fills[root]):
                problems.append(
                    f"parent {root} ({order.order_id}): its children's executions "
                    f"{dict(by_order.get(order.order_id, {}))} != its fills at the OMS "
                    f"{dict(Counter(self.oms.fills[root]))}"
                )
            parent = engine.parents.get(order.order_id or "")
            if parent is not None and parent.cum_qty != order.cum:
                problems.append(f"parent {root}: engine CumQty {parent.cum_qty}, OMS {order.cum}")
        problems += [
            f"parent {p.order_id} ({p.cl_ord_id}) still live in the engine" for p in engine.parents.values() if p.live
        ]
        problems += [f"{v.name}: child {o.cl_ord_id} still resting" for v in self.venues.values() for o in v.resting()]
        return problems

    def describe(self, problems: list[str]) -> str:
        return (
            f"seed {self.seed}: {len(problems)} problem(s) after {self.boots} starts, crashes at "
            f"{', '.join(self.faults.crashes) or 'none'}\n  "
            + "\n  ".join(problems[:8])
            + f"\n  rerun: SORGW_SIM_SEED={self.seed} .venv/bin/python -m pytest "
            f"tests/unit/test_recovery_simulation.py -k step_boundary (SORGW_SIM_TRACE=1 prints every message)"
        )
