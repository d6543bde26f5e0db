"""Configuration: YAML files validated by pydantic, every key overridable by an env var."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, time as dt_time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.audit.records import audit_key
from gateway.core.routing.venue_rules import VenueRules
from gateway.core.schedule import Window
from gateway.core.types import OrdType, Strategy, TimeInForce, Urgency, VenueKind

ENV_PREFIX = "SORGW__"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


def secret_from_env(environ: Mapping[str, str], variable: str, key: str) -> str:
    """The value of the environment variable a config key names; ConfigError naming both when it is unset."""
    value = environ.get(variable)
    if not value:
        raise ConfigError(f"{key}: environment variable {variable} is not set")
    return value


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Port = Annotated[int, Field(gt=0, lt=65536, description="a TCP port, 1-65535")]
# Venue and symbol names become FIX values and MQTT topic levels: no '/', '+', '#' or spaces.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")]


class SymbolConfig(Model):
    symbol: Name
    tick: Decimal = Decimal("0.01")
    lot: int = Field(1, ge=1)
    reference_price: Decimal = Field(Decimal("100"), gt=0)

    @field_validator("tick")
    @classmethod
    def _positive_tick(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("tick must be positive")
        return value


class FixConfig(Model):
    """Engine-wide quickfix settings."""

    spec_dir: Path | None = None  # None: the fix_specs/ dictionaries shipped in the package
    store: Literal["memory", "file"] = "memory"
    store_path: Path = Path("var/fix/store")
    log_path: Path | None = None  # quickfix message logs; None keeps them off
    heartbeat_interval: int = Field(30, ge=1)
    reconnect_interval: int = Field(2, ge=1)
    # An OMS connection not logged on this long after it connected is closed (a venue that does not answer
    # our Logon this long is disconnected: quickfix's LogonTimeout).
    logon_timeout_s: int = Field(10, ge=1)
    # A venue that cannot be reached is logged at its first failed attempt, then once per this many seconds.
    connect_failure_log_interval_s: float = Field(60.0, gt=0)


TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
ORD_TYPE_NAMES = {"limit": OrdType.LIMIT, "market": OrdType.MARKET}
TIF_NAMES = {"day": TimeInForce.DAY, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
# quickfix settings our own keys set: a venue or session sets them through those keys, not `quickfix:`.
OWN_QUICKFIX_SETTINGS = {
    "BeginString": "begin_string",
    "SenderCompID": "sender_comp_id",
    "TargetCompID": "target_comp_id",
    "ConnectionType": "(the side of the gateway)",
    "SocketConnectHost": "host",
    "SocketConnectPort": "port",
    "SocketAcceptHost": "host",
    "SocketAcceptPort": "port",
    "StartTime": "schedule.start_time",
    "EndTime": "schedule.end_time",
    "StartDay": "schedule.start_day",
    "EndDay": "schedule.end_day",
    "TimeZone": "schedule.time_zone",
    "UseLocalTime": "schedule.time_zone",
    "LogonTimeout": "logon_timeout",
    "HeartBtInt": "heartbeat_interval",
    "DataDictionary": "data_dictionary",
    "ResetOnLogon": "sequence_reset",
    "FileStorePath": "fix.store_path",
    "FileLogPath": "fix.log_path",
}


class Schedule(Model):
    """When a session is up: each day from start_time to end_time, or with start_day/end_day once a week from
    start_day start_time to end_day end_time; times are in time_zone. No schedule keeps it up around the clock."""

    start_time: str = Field(pattern=TIME_OF_DAY)
    end_time: str = Field(pattern=TIME_OF_DAY)
    start_day: Day | None = None
    end_day: Day | None = None
    time_zone: str = "UTC"  # an IANA name (America/New_York); quickfix 1.16 itself knows only UTC and local time

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/London)") from None
        return value

    @model_validator(mode="after")
    def _both_days(self) -> Schedule:
        if (self.start_day is None) != (self.end_day is None):
            raise ValueError("start_day and end_day go together (a weekly session), or neither (a daily one)")
        return self

    def window(self) -> Window:
        """The schedule as the core's Window (gateway.core.schedule.in_schedule)."""
        days = (
            (None, None)
            if self.start_day is None or self.end_day is None
            else (DAYS.index(self.start_day), DAYS.index(self.end_day))
        )
        return Window(
            dt_time.fromisoformat(self.start_time),
            dt_time.fromisoformat(self.end_time),
            ZoneInfo(self.time_zone),
            *days,
        )

    def in_utc(self, now: datetime) -> tuple[str, str, str | None, str | None]:
        """StartTime, EndTime, StartDay, EndDay for quickfix, in UTC at the zone's offset at `now`.

        quickfix reads its schedule in UTC, so a zone's daylight-saving change takes effect at the next start.
        """
        zone = ZoneInfo(self.time_zone)
        today = now.astimezone(zone).date()
        start, start_day = _utc(today, self.start_time, self.start_day, zone)
        end, end_day = _utc(today, self.end_time, self.end_day, zone)
        return start, end, start_day, end_day


def _utc(day: date, time_of_day: str, weekday: str | None, zone: ZoneInfo) -> tuple[str, str | None]:
    local = datetime.combine(day, dt_time.fromisoformat(time_of_day), zone)
    if weekday is not None:
        local += timedelta(days=DAYS.index(weekday) - local.weekday())
    utc = local.astimezone(timezone.utc)
    return utc.strftime("%H:%M:%S"), None if weekday is None else DAYS[utc.weekday()]


def _check_quickfix(settings: dict[str, str]) -> dict[str, str]:
    for key in settings:
        if not key.isidentifier() or not key[0].isupper():
            raise ValueError(f"quickfix.{key}: not a quickfix setting name (CamelCase, such as ResetOnLogout)")
        if key in OWN_QUICKFIX_SETTINGS:
            raise ValueError(f"quickfix.{key}: set by this session's {OWN_QUICKFIX_SETTINGS[key]}, not here")
    return settings


QuickfixSettings = Annotated[dict[str, str], AfterValidator(_check_quickfix)]


class UpstreamSession(Model):
    """One OMS session the upstream acceptor accepts."""

    sender_comp_id: str = "SORGW"
    target_comp_id: str = "OMS"
    begin_string: Literal["FIX.4.4", "FIX.4.2"] = "FIX.4.4"
    cancel_on_disconnect: bool = False  # True: when this session logs out or drops, its open orders are canceled
    schedule: Schedule | None = None  # None: always on
    logon_timeout: int | None = Field(None, ge=1)  # seconds; None: fix.logon_timeout_s
    quickfix: QuickfixSettings = {}  # any other quickfix session setting, passed through (ResetOnLogout: "Y")
    username: str | None = None  # required in Username (553) on the OMS's Logon; None: no Username/Password check
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # env var holding Password (554)
    password_file: Path | None = None  # or a file holding it (one line; a trailing newline is ignored)

    @model_validator(mode="after")
    def _one_password_source(self) -> UpstreamSession:
        sources = (self.password_env is not None) + (self.password_file is not None)
        if self.username is not None and sources != 1:
            raise ValueError("username needs exactly one of password_env and password_file")
        if self.username is None and sources:
            raise ValueError("password_env and password_file need username")
        return self

    def credentials(self, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """Username and the password the OMS must send; None when the session has no Username/Password check."""
        password = self.password(environ)
        return None if self.username is None or password is None else (self.username, password)

    def password(self, environ: Mapping[str, str]) -> str | None:
        """The password the OMS must send, from the environment or the file; ConfigError naming the source."""
        name = f"upstream.sessions.{self.target_comp_id}"
        if self.password_env is not None:
            return secret_from_env(environ, self.password_env, f"{name}.password_env")
        if self.password_file is None:
            return None
        try:
            value = self.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}.password_file: cannot read {self.password_file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{name}.password_file: {self.password_file} is empty")
        return value


class UpstreamConfig(Model):
    host: str = "127.0.0.1"
    port: Port = 9876
    sessions: tuple[UpstreamSession, ...] = (UpstreamSession(),)
    # An OMS this far behind is disconnected (what it missed is resent after its next logon).
    max_send_queue: int = Field(10_000, ge=1)  # reports waiting to be sent to one session
    send_timeout_ms: int = Field(5_000, ge=10)  # one send to it blocked this long (it stopped reading)
    # Connections not yet logged on beyond this many are closed at once, the newest first.
    max_pending_connections: int = Field(20, ge=1)


class VenueConfig(Model):
    """One downstream venue session, and what the router needs to know about the venue."""

    name: Name  # the venue's id: ExDestination (100) and LastMkt (30) use it
    kind: VenueKind = VenueKind.LIT
    host: str = "127.0.0.1"
    port: Port
    sender_comp_id: str = "SORGW"
    target_comp_id: str | None = None  # defaults to the venue name
    begin_string: Literal["FIX.4.4", "FIX.4.2"] = "FIX.4.4"
    heartbeat_interval: int | None = Field(None, ge=1)  # None: fix.heartbeat_interval
    schedule: Schedule | None = None  # None: always on
    logon_timeout: int | None = Field(None, ge=1)  # seconds; None: fix.logon_timeout_s
    quickfix: QuickfixSettings = {}  # any other quickfix session setting, passed through (ResetOnLogout: "Y")
    sequence_reset: Literal["logon", "never"] | None = None  # None: follows fix.store
    data_dictionary: FilePath | None = None  # None: the standard dictionary for begin_string
    username: str | None = None  # Username (553) on Logon
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # env var holding Password (554)
    maker_fee: Decimal = Decimal("0")
    taker_fee: Decimal = Decimal("0")
    latency_us: int = Field(500, ge=0)
    min_qty: int = Field(1, ge=1)
    protected: bool = True
    order_types: tuple[Literal["limit", "market"], ...] = ("limit", "market")
    time_in_force: tuple[Literal["day", "ioc", "fok"], ...] = ("day", "ioc", "fok")
    tick: Decimal | None = None  # None: the symbol's tick
    lot: int = Field(1, ge=1)  # children are multiples of this and of the symbol's lot
    market_data: bool = True  # False: no book is read for this venue, even if one is published

    @property
    def target(self) -> str:
        return self.target_comp_id or self.name

    @field_validator("tick")
    @classmethod
    def _positive_tick(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("tick must be positive")
        return value

    @model_validator(mode="after")
    def _usable(self) -> VenueConfig:
        if "limit" not in self.order_types:
            raise ValueError("order_types must include limit: every order can be sent as a limit, not as a market")
        if "day" not in self.time_in_force:
            raise ValueError("time_in_force must include day: IOC is emulated with a DAY order and a cancel")
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env needs username")
        return self

    def rules(self) -> VenueRules:
        return VenueRules(
            order_types=frozenset(ORD_TYPE_NAMES[t] for t in self.order_types),
            tifs=frozenset(TIF_NAMES[t] for t in self.time_in_force),
            tick=self.tick,
            lot=self.lot,
            min_qty=self.min_qty,
            market_data=self.market_data,
        )

    def keeps_sequence_numbers(self, fix: FixConfig) -> bool:
        """Whether this session's sequence numbers survive a reconnect, so the venue resends what was missed."""
        return self.sequence_reset == "never" or (self.sequence_reset is None and fix.store == "file")

    def password(self, environ: Mapping[str, str]) -> str | None:
        """The Logon password from the environment; ConfigError naming the variable if it is not set."""
        if self.password_env is None:
            return None
        return secret_from_env(environ, self.password_env, f"venues.{self.name}.password_env")


class CostConfig(Model):
    """The cost strategy's risk terms, in basis points of the price per share."""

    toxicity_bps: float = Field(5.0, ge=0)  # per unit of a venue's toxicity score (0..1)
    latency_bps_per_ms: float = Field(0.02, ge=0)  # per millisecond of a venue's ack latency
    staleness_bps_per_s: float = Field(1.0, ge=0)  # per second of a venue's quote age
    miss_bps: float = Field(2.0, ge=0)  # per unit of a venue's miss rate (1 - fill rate)
    explore_every: int = Field(20, ge=0)  # a venue no cost parent used for this many parents gets a share; 0: never
    explore_qty: int = Field(100, ge=1)  # that share in shares (rounded down to lots, at least one lot)


class BreakerConfig(Model):
    """A venue's circuit breaker: `failures` child rejects, disconnects or child timeouts within `window_s` take
    it out of routing; after `cooldown_s` one probe child may go, and its ack or fill brings the venue back."""

    enabled: bool = True
    failures: int = Field(5, ge=1)
    window_s: float = Field(10.0, gt=0, allow_inf_nan=False)
    cooldown_s: float = Field(30.0, gt=0, allow_inf_nan=False)


class RoutingConfig(Model):
    default_urgency: Urgency = Urgency.MEDIUM
    default_strategy: Strategy = Strategy.DARK  # for orders without SorStrategy (9702)
    max_sweeps: int = Field(5, ge=1)  # take rounds per parent before the remainder rests or expires
    max_venue_rejects: int = Field(1, ge=1)  # rejects from one venue before a parent stops using it
    max_quote_age_ms: int = Field(2000, ge=0)  # an older book is stale and not routed to; 0: never stale
    dark_timeout_ms: int = Field(2000, ge=1)  # `dark` strategy, urgency L: how long children rest in dark pools
    probe_qty: int = Field(1000, ge=1)  # `dark` strategy, urgency M: most shares sent as dark IOC probes
    dark_min_fill: float = Field(0.05, ge=0, lt=1)  # urgency L: no pool gets shares it fills less often than this
    cost: CostConfig = CostConfig()
    breaker: BreakerConfig = BreakerConfig()
    markout_horizons_ms: tuple[int, ...] = Field((100, 1000, 5000), min_length=1)
    toxicity_horizon_ms: int = Field(100, ge=0)  # the markout horizon a venue's toxicity score reads
    toxicity_half_life: int | None = Field(10, ge=1)  # a venue's markouts after which one counts half; None: never
    timer_ms: int = Field(50, ge=1)  # how often the engine sees time pass (dark timeouts, markout mids)
    market_protection_bps: int = Field(50, ge=0, le=10_000)  # market -> limit this far past the far touch
    unquoted_remainders: bool = False  # venues with market_data: false may take what the plan leaves
    retain_finished_ms: int = Field(30_000, ge=0)  # a finished order stays in memory this long for late reports
    final_states_kept: int = Field(10_000, ge=0)  # final states of forgotten orders kept for status and duplicates
    venue_down_timeout_ms: int = Field(30_000, ge=1)  # a venue down this long: its children are held in doubt
    dark_half_life: int | None = Field(None, ge=1)  # dark outcomes after which one counts half; None: never forget
    dark_change_threshold: float | None = Field(5.0, gt=0)  # CUSUM of surprise fill share that resets what pools hold
    dark_change_slack: float = Field(0.2, ge=0, lt=1)  # surprise per dark outcome the CUSUM forgives

    @field_validator("markout_horizons_ms")
    @classmethod
    def _non_negative(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if min(value) < 0:
            raise ValueError("markout horizons are non-negative milliseconds")
        return value


class MqttConfig(Model):
    """The market-data bus between venue simulators and the gateway; no url keeps books in-process."""

    url: str | None = None  # mqtt://host:port, or mqtts://host:port for TLS
    prefix: str = "sorgw"  # topics are PREFIX/book/VENUE/SYMBOL
    username: str | None = None  # MQTT CONNECT username; None: connect anonymously
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # env var holding its password
    ca_file: FilePath | None = None  # mqtts: the CA that signed the broker's certificate; None: the system's CAs

    @field_validator("url")
    @classmethod
    def _mqtt_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("expected mqtt://HOST:PORT or mqtts://HOST:PORT")
        return value

    @model_validator(mode="after")
    def _password_needs_username(self) -> MqttConfig:
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env needs username")
        return self

    def password(self, environ: Mapping[str, str]) -> str | None:
        """The broker password from the environment; ConfigError naming the variable if it is not set."""
        if self.password_env is None:
            return None
        return secret_from_env(environ, self.password_env, "mqtt.password_env")


class AuditConfig(Model):
    """Where the audit trail is kept: an SQLite file (embedded default) or PostgreSQL."""

    url: str = "sqlite:///var/audit/audit.db"
    table: str = Field("audit", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # PostgreSQL table name
    # While the store refuses commits, how long a new order, cancel or replace waits for it before it is refused.
    max_hold_ms: int = Field(2000, ge=0)
    # The environment variable holding the HMAC-SHA256 key of the chain (None: plain SHA-256, anyone can re-hash).
    hmac_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    checkpoint_path: Path | None = None  # append-only file of signed heads (needs hmac_key_env)
    checkpoint_interval_s: float = Field(60.0, gt=0)  # while the head moves; also at every stop
    book_levels: int = Field(10, ge=1)  # price levels per side of each book a decision read, kept on record

    @model_validator(mode="after")
    def _checkpoints_signed(self) -> "AuditConfig":
        if self.checkpoint_path is not None and self.hmac_key_env is None:
            raise ValueError("audit.checkpoint_path: checkpoints are signed with the audit key; set audit.hmac_key_env")
        return self

    def key(self, environ: Mapping[str, str]) -> bytes | None:
        """The chain's HMAC key from the environment; ConfigError naming the variable if it is unset or short."""
        if self.hmac_key_env is None:
            return None
        try:
            return audit_key(environ.get(self.hmac_key_env), self.hmac_key_env)
        except ValueError as exc:
            raise ConfigError(f"audit.hmac_key_env: {exc}") from None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return value


class MetricsConfig(Model):
    """The HTTP endpoint ops and Prometheus read: /metrics, /healthz, /readyz."""

    enabled: bool = True
    host: str = "127.0.0.1"  # 0.0.0.0 to be scraped from another host or container
    port: int = Field(9464, ge=0, lt=65536)  # 0: any free port (the log line gateway.metrics names it)


MIN_ADMIN_TOKEN = 16  # characters: a short token can be guessed by trying


class AdminConfig(Model):
    """The admin endpoint (halt, resume, halts in force); every request needs the bearer token from token_env."""

    enabled: bool = False
    host: str = "127.0.0.1"  # anyone who reaches it with the token can halt trading: keep it local
    port: int = Field(9465, ge=0, lt=65536)  # 0: any free port (the log line gateway.admin names it)
    token_env: str = Field("SORGW_ADMIN_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    def token(self, environ: Mapping[str, str]) -> str:
        """The bearer token from the environment; ConfigError naming the variable if it is unset or short."""
        value = environ.get(self.token_env)
        if not value:
            raise ConfigError(
                f"admin.token_env: the environment variable {self.token_env} is not set "
                f"(the admin endpoint needs a token; or set admin.enabled: false)"
            )
        if len(value) < MIN_ADMIN_TOKEN:
            raise ConfigError(
                f"admin.token_env: {self.token_env} is shorter than {MIN_ADMIN_TOKEN} characters "
                f"(e.g. openssl rand -hex 32)"
            )
        return value


class ShutdownConfig(Model):
    """What a stop (SIGTERM, SIGINT) does with orders still working at venues."""

    working_orders: Literal["cancel", "leave"] = "cancel"
    cancel_timeout_ms: int = Field(5_000, ge=0)  # how long to wait for the venues to confirm the cancels


class RiskLimitsConfig(Model):
    """One level of pre-trade limits (README: Risk controls); a key left out falls back to risk.defaults."""

    max_order_qty: int | None = Field(None, ge=1)
    max_order_notional: Decimal | None = Field(None, gt=0)  # OrderQty x Price (a market order: x the NBBO far touch)
    price_collar_bps: Decimal | None = Field(None, gt=0)  # how far past the NBBO far touch a limit price may go
    price_collar_ticks: int | None = Field(None, ge=1)  # the same in ticks; with both, the narrower band applies
    market_orders: bool | None = None  # false: market orders are refused
    max_open_qty: int | None = Field(None, ge=1)  # per session: LeavesQty of its live orders, this one included
    max_open_notional: Decimal | None = Field(None, gt=0)  # per session: their notional
    max_orders_per_s: int | None = Field(None, ge=1)  # per session: new orders and replaces in any 1 s
    duplicate_window_ms: int | None = Field(None, ge=0)  # per session: same side, symbol, qty, price; 0 off


SESSION_ONLY_LIMITS = ("max_open_qty", "max_open_notional", "max_orders_per_s", "duplicate_window_ms")


class RiskConfig(Model):
    """Pre-trade limits every new order and replace is checked against before anything is routed."""

    defaults: RiskLimitsConfig = RiskLimitsConfig()
    sessions: dict[str, RiskLimitsConfig] = {}  # by the OMS's CompID (upstream.sessions[].target_comp_id)
    symbols: dict[str, RiskLimitsConfig] = {}  # order limits only
    restricted_symbols: tuple[Name, ...] = ()  # every order in these is refused

    @model_validator(mode="after")
    def _symbol_keys(self) -> "RiskConfig":
        for symbol, limits in self.symbols.items():
            wrong = [key for key in SESSION_ONLY_LIMITS if getattr(limits, key) is not None]
            if wrong:
                raise ValueError(f"risk.symbols.{symbol}: {', '.join(wrong)} are per session, not per symbol")
        return self


MAX_MARKOUT_HORIZON_MS = 3_600_000


class TcaConfig(Model):
    """What the gateway records for transaction cost analysis (`sorgw tca`) beyond the messages themselves."""

    # After each fill reported upstream, the NBBO (and each lit venue's touch) is recorded this long later:
    # the markouts `sorgw tca` computes. 0 records it at the fill itself.
    markout_horizons_ms: tuple[int, ...] = (100, 1000, 5000)
    record_trades: bool = True  # every trade the venues publish on the bus goes on the trail as a `trade` record

    @field_validator("markout_horizons_ms")
    @classmethod
    def _horizons(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) > 8:
            raise ValueError("at most 8 markout horizons")
        if any(h < 0 or h > MAX_MARKOUT_HORIZON_MS for h in value):
            raise ValueError(f"each markout horizon must be 0..{MAX_MARKOUT_HORIZON_MS} ms")
        if len(set(value)) != len(value):
            raise ValueError("markout horizons must be distinct")
        return tuple(sorted(value))


class LoggingConfig(Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_output: bool = Field(False, alias="json")


class GatewayConfig(Model):
    """config/gateway.yaml: the gateway process (`sorgw run`)."""

    name: str = "SORGW"
    upstream: UpstreamConfig = UpstreamConfig()
    venues: tuple[VenueConfig, ...] = Field(min_length=1)
    symbols: tuple[SymbolConfig, ...]
    routing: RoutingConfig = RoutingConfig()
    fix: FixConfig = FixConfig()
    mqtt: MqttConfig = MqttConfig()
    audit: AuditConfig = AuditConfig()
    metrics: MetricsConfig = MetricsConfig()
    admin: AdminConfig = AdminConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    logging: LoggingConfig = LoggingConfig()
    risk: RiskConfig = RiskConfig()
    tca: TcaConfig = TcaConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> "GatewayConfig":
        _require_unique("venues", [v.name for v in self.venues])
        _require_unique("venue sessions", [(v.begin_string, v.sender_comp_id, v.target) for v in self.venues])
        _require_unique(
            "upstream.sessions", [(s.begin_string, s.sender_comp_id, s.target_comp_id) for s in self.upstream.sessions]
        )
        _require_unique("symbols", [s.symbol for s in self.symbols])
        _require_distinct_ports(
            [("upstream.port", self.upstream.host, self.upstream.port)]
            + [(f"venues.{v.name}.port", v.host, v.port) for v in self.venues]
        )
        oms = {s.target_comp_id for s in self.upstream.sessions}
        symbols = {s.symbol for s in self.symbols}
        for what, names, known in (
            ("sessions", self.risk.sessions, oms),
            ("symbols", self.risk.symbols, symbols),
            ("restricted_symbols", self.risk.restricted_symbols, symbols),
        ):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(
                    f"risk.{what}: {', '.join(unknown)} not configured "
                    f"({'upstream.sessions[].target_comp_id' if what == 'sessions' else 'symbols'})"
                )
        with_password = [v.name for v in self.venues if v.password_env is not None]
        with_password += [s.target_comp_id for s in self.upstream.sessions if s.username is not None]
        if self.fix.log_path is not None and with_password:
            raise ValueError(
                f"fix.log_path: quickfix's message logs would hold the Logon password of "
                f"{', '.join(with_password)}; leave them off, the audit trail "
                f"keeps every message without it"
            )
        return self


class DepthProfile(Model):
    """How a simulated lit venue seeds and replenishes its book around the reference price."""

    levels: int = Field(5, ge=1)
    qty_per_level: int = Field(500, ge=1)
    spread_ticks: int = Field(1, ge=1)  # distance from the reference price to the best quote
    replenish_ms: int = Field(500, ge=0)  # 0 never replenishes


class DarkLiquidity(Model):
    """Hidden size a simulated dark pool holds per side, drawn around a mean."""

    mean_qty: int = Field(1000, ge=0)
    stdev_qty: int = Field(300, ge=0)  # normal only
    distribution: Literal["normal", "exponential", "uniform"] = "normal"  # uniform: over [0, 2 x mean_qty]
    fill_probability: float = Field(1.0, ge=0, le=1)  # chance that a side has any hidden size on a draw


class Toxicity(Model):
    """Adverse selection at a simulated lit venue, as markouts measure it: after a client's order takes
    liquidity there, with `probability` the venue's quotes move `ticks` against the taker's fill (down after
    a buy, up after a sell), so what the taker just got is marked down."""

    probability: float = Field(0, ge=0, le=1)
    ticks: int = Field(1, ge=0)


class SimVenueConfig(Model):
    """One simulated venue: a FIX acceptor in front of a matching core."""

    name: Name
    kind: VenueKind = VenueKind.LIT
    host: str = "127.0.0.1"
    port: Port
    sender_comp_id: str | None = None  # defaults to the venue name
    target_comp_id: str = "SORGW"
    begin_string: Literal["FIX.4.4", "FIX.4.2"] = "FIX.4.4"
    maker_fee: Decimal = Decimal("0")
    taker_fee: Decimal = Decimal("0")
    ack_latency_ms: float = Field(0, ge=0)
    fill_latency_ms: float = Field(0, ge=0)
    reject_rate: float = Field(0, ge=0, le=1)
    min_qty: int = Field(1, ge=1)
    depth: DepthProfile = DepthProfile()
    dark: DarkLiquidity = DarkLiquidity()
    price_offset_ticks: int = 0  # shifts this venue's quotes so venues differ
    toxicity: Toxicity = Toxicity()
    speed_bump_us: int = Field(0, ge=0)  # delay on inbound orders and cancels (IEX: 350)
    background_flow: float = Field(0, ge=0, le=1)  # chance per replenish and symbol of someone else's market order

    @property
    def comp_id(self) -> str:
        return self.sender_comp_id or self.name


class VenuesConfig(Model):
    """config/venues.yaml: the venue simulators (`sorgw venue`)."""

    seed: int = 42
    symbols: tuple[SymbolConfig, ...]
    venues: tuple[SimVenueConfig, ...] = Field(min_length=1)
    fix: FixConfig = FixConfig()
    mqtt: MqttConfig = MqttConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> "VenuesConfig":
        _require_unique("venues", [v.name for v in self.venues])
        _require_distinct_ports([(f"venues.{v.name}.port", v.host, v.port) for v in self.venues])
        _require_unique("symbols", [s.symbol for s in self.symbols])
        return self


def _require_unique(what: str, values: list[Any]) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what}: duplicate {value!r}")
        seen.add(value)


WILDCARD_HOSTS = ("0.0.0.0", "", "::")


def _require_distinct_ports(ports: list[tuple[str, str, int]]) -> None:
    """Each (key, host, port) its own address: two sessions on one port would reach the same listener."""
    for i, (key, host, port) in enumerate(ports):
        for other, other_host, other_port in ports[:i]:
            if port == other_port and (host == other_host or host in WILDCARD_HOSTS or other_host in WILDCARD_HOSTS):
                raise ValueError(f"{key}: {host}:{port} is also {other}; give each its own port")


def load(path: str | Path, model: type[Model], environ: dict[str, str] | None = None) -> Any:
    """Read a YAML file, apply SORGW__A__B=value overrides, validate; ConfigError on any fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    overrides = apply_env_overrides(raw, os.environ if environ is None else environ)
    return validate(raw, model, str(path), overrides)


def validate(
    raw: dict[str, Any], model: type[Model], source: str, overrides: Mapping[tuple[str, ...], str] | None = None
) -> Any:
    """The validated model; ConfigError listing every bad key, and the SORGW__ variable that set it if one did."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(part) for part in err["loc"])
            key = ".".join(loc) or "(top level)"
            message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            named = sorted(
                name
                for path, name in (overrides or {}).items()
                if loc and (path[: len(loc)] == loc or loc[: len(path)] == path)
            )
            problems.append(f"  {key}: {message}" + (f" (set by {', '.join(named)})" if named else ""))
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(problems)) from None


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """SORGW__UPSTREAM__PORT=9000 sets upstream.port; VENUES__0__PORT indexes a list. Returns key path -> variable."""
    applied: dict[tuple[str, ...], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        applied[tuple(parts)] = name
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not a valid YAML value: {exc}") from None
        node: Any = raw
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not isinstance(node, list | dict):
                raise ConfigError(f"{name}: {'.'.join(parts[:i])} is a single value, it has no {part!r}")
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"{name}: no list item {part!r}")
                index = int(part)
                if last:
                    node[index] = parsed
                else:
                    node = node[index]
            else:
                if last:
                    node[part] = parsed
                else:
                    node = node.setdefault(part, {})
    return applied
