"""The embedded default topology (symbols and venues), as configs on free local ports."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from gateway import config

SYMBOLS: list[dict[str, Any]] = [
    {"symbol": "AAPL", "tick": "0.01", "lot": 1, "reference_price": "190.00"},
    {"symbol": "MSFT", "tick": "0.01", "lot": 1, "reference_price": "410.00"},
]

# name, kind, maker fee, taker fee, router latency estimate (us), min size, simulator settings
VENUES: list[dict[str, Any]] = [
    {
        "name": "LITA",
        "kind": "lit",
        "maker_fee": "-0.0020",
        "taker_fee": "0.0030",
        "latency_us": 300,
        "sim": {"depth": {"levels": 5, "qty_per_level": 300, "spread_ticks": 1, "replenish_ms": 500}},
    },
    {
        "name": "LITB",
        "kind": "lit",
        "maker_fee": "0.0015",
        "taker_fee": "-0.0010",
        "latency_us": 450,
        "sim": {
            "depth": {"levels": 5, "qty_per_level": 200, "spread_ticks": 1, "replenish_ms": 500},
            "ack_latency_ms": 0.5,
            "fill_latency_ms": 0.5,
        },
    },
    {
        "name": "LITC",
        "kind": "lit",
        "maker_fee": "-0.0015",
        "taker_fee": "0.0025",
        "latency_us": 200,
        "sim": {
            "depth": {"levels": 5, "qty_per_level": 400, "spread_ticks": 1, "replenish_ms": 500},
            "price_offset_ticks": 1,
        },
    },
    {
        "name": "DRKA",
        "kind": "dark",
        "maker_fee": "0",
        "taker_fee": "0.0010",
        "latency_us": 400,
        "min_qty": 100,
        "sim": {"dark": {"mean_qty": 800, "stdev_qty": 200}},
    },
    {
        "name": "DRKB",
        "kind": "dark",
        "maker_fee": "0",
        "taker_fee": "0.0008",
        "latency_us": 600,
        "min_qty": 500,
        "sim": {"dark": {"mean_qty": 1500, "stdev_qty": 500}},
    },
]


def free_ports(n: int) -> list[int]:
    """n distinct ports free on 127.0.0.1 now (all held open together, so none repeats)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def build(
    work_dir: Path,
    venues: list[dict[str, Any]] | None = None,
    seed: int = 42,
    sim_overrides: dict[str, dict[str, Any]] | None = None,
    gateway_overrides: dict[str, Any] | None = None,
) -> tuple[config.GatewayConfig, config.VenuesConfig]:
    """Gateway and simulator configs for the same venues, each venue on its own free port."""
    venues = venues or VENUES
    sim_overrides = sim_overrides or {}
    fix_gateway = {
        "store": "memory",
        "store_path": str(work_dir / "gateway-store"),
        "heartbeat_interval": 5,
        "reconnect_interval": 1,
    }
    fix_venues = {"store": "memory", "store_path": str(work_dir / "venue-store"), "heartbeat_interval": 5}
    gw_venues, sim_venues = [], []
    upstream_port, *ports = free_ports(len(venues) + 1)
    for venue, port in zip(venues, ports):
        common = {
            "name": venue["name"],
            "kind": venue["kind"],
            "port": port,
            "maker_fee": venue["maker_fee"],
            "taker_fee": venue["taker_fee"],
        }
        gw_venues.append({**common, "latency_us": venue["latency_us"], "min_qty": venue.get("min_qty", 1)})
        sim_venues.append(
            {
                **common,
                "min_qty": venue.get("min_qty", 1),
                **venue.get("sim", {}),
                **sim_overrides.get(venue["name"], {}),
            }
        )
    gateway_raw: dict[str, Any] = {
        "upstream": {"port": upstream_port},
        "venues": gw_venues,
        "symbols": SYMBOLS,
        "fix": fix_gateway,
        "audit": {"url": f"sqlite:///{work_dir / 'audit.db'}"},
        "metrics": {"port": 0},
        **(gateway_overrides or {}),
    }
    venues_raw = {"seed": seed, "symbols": SYMBOLS, "venues": sim_venues, "fix": fix_venues}
    return (
        config.validate(gateway_raw, config.GatewayConfig, "embedded gateway defaults"),
        config.validate(venues_raw, config.VenuesConfig, "embedded venue defaults"),
    )
