"""config/simulate.yaml: the scenarios `sorgw simulate` runs, validated like the other config files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway import config
from gateway.config import (
    DarkLiquidity,
    DepthProfile,
    Model,
    Name,
    RoutingConfig,
    SimVenueConfig,
    SymbolConfig,
    Toxicity,
)
from gateway.core.market import VenueInfo
from gateway.core.types import OrdType, Side, Strategy, TimeInForce, Urgency, VenueKind

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_TIFS = {"day": TimeInForce.DAY, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}


class SimulationError(Exception):
    """A scenario that cannot be run as configured (a parent the gateway rejects, one that never finishes)."""


class SimVenue(Model):
    """One venue of a scenario: its matching core's behaviour and what the router is told about it."""

    name: Name
    kind: VenueKind = VenueKind.LIT
    maker_fee: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal(0)
    latency_us: int = Field(500, ge=0)  # one way, orders and reports and book snapshots alike; the router's too
    min_qty: int = Field(1, ge=1)
    protected: bool = True
    speed_bump_us: int = Field(0, ge=0)
    reject_rate: float = Field(0, ge=0, le=1)
    price_offset_ticks: int = 0
    depth: DepthProfile = DepthProfile()
    dark: DarkLiquidity = DarkLiquidity()
    toxicity: Toxicity = Toxicity()
    clean_after_ms: int | None = Field(None, ge=0)  # the venue's toxicity stops this long after the warm-up
    background_flow: float = Field(0, ge=0, le=1)

    def core_config(self) -> SimVenueConfig:
        """The matching core's settings; the FIX session fields are unused offline."""
        return SimVenueConfig(
            name=self.name,
            kind=self.kind,
            port=1,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
            reject_rate=self.reject_rate,
            min_qty=self.min_qty,
            depth=self.depth,
            dark=self.dark,
            price_offset_ticks=self.price_offset_ticks,
            toxicity=self.toxicity,
            speed_bump_us=self.speed_bump_us,
            background_flow=self.background_flow,
        )

    def info(self) -> VenueInfo:
        return VenueInfo(
            self.name, self.kind, self.maker_fee, self.taker_fee, self.latency_us, True, self.min_qty, self.protected
        )


class ParentSpec(Model):
    """One parent order the scenario's OMS sends, `at_ms` after the warm-up."""

    symbol: Name
    side: Literal["buy", "sell"]
    qty: int = Field(ge=1)
    limit_ticks: int | None = None  # ticks through the arrival mid (buy: above it); None: a market order
    urgency: Urgency = Urgency.MEDIUM
    tif: Literal["day", "ioc", "fok"] = "day"
    at_ms: int = Field(0, ge=0)
    repeat: int = Field(1, ge=1)  # this many parents, the i-th (from 0) sent at at_ms + i x every_ms
    every_ms: int = Field(0, ge=0)

    @property
    def side_enum(self) -> Side:
        return _SIDES[self.side]

    @property
    def ord_type(self) -> OrdType:
        return OrdType.MARKET if self.limit_ticks is None else OrdType.LIMIT

    @property
    def tif_enum(self) -> TimeInForce:
        return _TIFS[self.tif]

    def limit(self, arrival_mid: Decimal, tick: Decimal) -> Decimal | None:
        """The limit price: limit_ticks through the arrival mid, rounded to the tick on the passive side."""
        if self.limit_ticks is None:
            return None
        sign = 1 if self.side == "buy" else -1
        raw = arrival_mid + sign * self.limit_ticks * tick
        ticks = (raw / tick).to_integral_value(rounding="ROUND_FLOOR" if sign > 0 else "ROUND_CEILING")
        return max(tick, ticks * tick)


class DarkStudySpec(Model):
    """The dark allocation study over the scenario's dark pools: episodes of `qty` shares split across them."""

    qty: int = Field(3000, ge=1)
    episodes: int = Field(1500, ge=1)
    last: int = Field(300, ge=1)  # the mean fill is over this many final episodes
    unit: int = Field(100, ge=1)
    change_at: int | None = Field(None, ge=1)  # a regime change: from this episode on the pools hold `after`
    after: dict[str, DarkLiquidity] = {}  # pool -> its hidden size after the change (others stay as they were)

    @model_validator(mode="after")
    def _last_within(self) -> DarkStudySpec:
        if self.last > self.episodes:
            raise ValueError("last must not exceed episodes")
        if (self.change_at is None) != (not self.after):
            raise ValueError("a regime change needs both change_at and after")
        if self.change_at is not None and self.change_at >= self.episodes:
            raise ValueError("change_at must come before the last episode")
        return self


class Scenario(Model):
    name: Name
    description: str = ""
    runs: int | None = Field(None, ge=1)  # None: the top-level runs
    symbols: tuple[SymbolConfig, ...] = Field(min_length=1)
    venues: tuple[SimVenue, ...] = Field(min_length=1)
    parents: tuple[ParentSpec, ...] = Field(min_length=1)
    strategies: tuple[Strategy, ...] = tuple(Strategy)
    warmup_ms: int = Field(200, ge=0)
    horizon_ms: int = Field(2000, ge=1)  # a parent still working this long after it was sent is canceled
    follow_ms: int | None = Field(None, ge=0)  # the other lit venues follow a toxic move after this; None: never
    dark_study: DarkStudySpec | None = None

    @field_validator("parents")
    @classmethod
    def _repeated(cls, parents: tuple[ParentSpec, ...]) -> tuple[ParentSpec, ...]:
        """Each repeated parent as that many parents, in the order listed."""
        return tuple(
            parent.model_copy(update={"at_ms": parent.at_ms + i * parent.every_ms, "repeat": 1})
            for parent in parents
            for i in range(parent.repeat)
        )

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        config._require_unique("venues", [v.name for v in self.venues])
        config._require_unique("symbols", [s.symbol for s in self.symbols])
        config._require_unique("strategies", list(self.strategies))
        if not any(v.kind is VenueKind.LIT for v in self.venues):
            raise ValueError("needs at least one lit venue (the NBBO comes from them)")
        known = {s.symbol for s in self.symbols}
        for parent in self.parents:
            if parent.symbol not in known:
                raise ValueError(f"parent symbol {parent.symbol!r} is not in symbols")
        if self.dark_study is not None and not self.dark_pools:
            raise ValueError("dark_study needs at least one dark venue")
        if self.dark_study is not None:
            unknown = set(self.dark_study.after) - {v.name for v in self.dark_pools}
            if unknown:
                raise ValueError(f"dark_study.after names {sorted(unknown)[0]!r}, not a dark venue of the scenario")
        return self

    @property
    def dark_pools(self) -> tuple[SimVenue, ...]:
        return tuple(v for v in self.venues if v.kind is VenueKind.DARK)

    def symbol(self, name: str) -> SymbolConfig:
        return next(s for s in self.symbols if s.symbol == name)


class SimulationConfig(Model):
    """config/simulate.yaml (`sorgw simulate`)."""

    seed: int = 42
    runs: int = Field(20, ge=1)  # Monte Carlo runs per scenario and strategy, unless a scenario says otherwise
    markout_ms: int = Field(1000, ge=1)  # the markout horizon after each fill
    routing: RoutingConfig = RoutingConfig()  # as in gateway.yaml; timer_ms is capped at 10 here
    scenarios: tuple[Scenario, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SimulationConfig:
        config._require_unique("scenarios", [s.name for s in self.scenarios])
        return self


def load(path: str | Path) -> SimulationConfig:
    """Read and validate a simulation config; ConfigError naming the file and every bad key."""
    return config.load(path, SimulationConfig)
