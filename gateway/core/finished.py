"""The final states of orders the engine has forgotten: a bounded cache for status requests and duplicate ClOrdIDs."""

from __future__ import annotations

from collections import OrderedDict

from gateway.core.types import ExecutionReport


class FinalStates:
    """The newest `capacity` finished orders, each an OrderStatus report to answer from, found by any of their
    ClOrdIDs (per session); the oldest leave first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, tuple[ExecutionReport, tuple[str, ...]]] = OrderedDict()  # by OrderID
        self._by_cl_ord_id: dict[tuple[str, str], ExecutionReport] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_cl_ord_id

    def cl_ord_ids(self) -> set[tuple[str, str]]:
        """Every (session, ClOrdID) answered from here."""
        return set(self._by_cl_ord_id)

    def get(self, session: str, cl_ord_id: str) -> ExecutionReport | None:
        return self._by_cl_ord_id.get((session, cl_ord_id))

    def add(self, state: ExecutionReport, cl_ord_ids: tuple[str, ...]) -> None:
        if self.capacity <= 0:
            return
        self._states[state.order_id] = (state, cl_ord_ids)
        for cl_ord_id in cl_ord_ids:
            self._by_cl_ord_id[(state.session, cl_ord_id)] = state
        while len(self._states) > self.capacity:
            _, (old, old_ids) = self._states.popitem(last=False)
            for cl_ord_id in old_ids:
                if self._by_cl_ord_id.get((old.session, cl_ord_id)) is old:
                    del self._by_cl_ord_id[(old.session, cl_ord_id)]
