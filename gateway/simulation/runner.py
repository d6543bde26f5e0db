"""Monte Carlo over the configured scenarios: every selected strategy, `runs` seeded worlds each."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.core.types import Strategy
from gateway.simulation.darkstudy import DarkStudyResult, study
from gateway.simulation.metrics import RunMetrics, measure
from gateway.simulation.progress import Progress
from gateway.simulation.scenarios import Scenario, SimulationConfig, SimulationError
from gateway.simulation.world import World


@dataclass(frozen=True, slots=True)
class Results:
    runs: list[RunMetrics]  # scenario, strategy, run order
    dark_studies: list[DarkStudyResult]


def world_seed(seed: int, scenario: str, run: int) -> int:
    """Run `run` of a scenario: the same world for every strategy, a different one per run and scenario."""
    return zlib.crc32(f"{seed}/{scenario}/{run}".encode())


def plan(
    cfg: SimulationConfig, scenarios: Sequence[str] = (), strategies: Sequence[str] = (), runs: int | None = None
) -> list[tuple[Scenario, tuple[Strategy, ...], int]]:
    """(scenario, strategies, runs) to simulate: the selection, checked against the config."""
    known = {s.name for s in cfg.scenarios}
    unknown = [name for name in scenarios if name not in known]
    if unknown:
        raise SimulationError(f"unknown scenario {unknown[0]!r} (configured: {', '.join(sorted(known))})")
    valid = {s.value for s in Strategy}
    bad = [name for name in strategies if name not in valid]
    if bad:
        raise SimulationError(f"unknown strategy {bad[0]!r} (one of: {', '.join(s.value for s in Strategy)})")
    work = []
    for scenario in cfg.scenarios:
        if scenarios and scenario.name not in scenarios:
            continue
        chosen = tuple(s for s in scenario.strategies if not strategies or s.value in strategies)
        if chosen:
            work.append((scenario, chosen, runs or scenario.runs or cfg.runs))
    if not work:
        raise SimulationError("nothing to simulate: no selected scenario lists the selected strategies")
    return work


def simulate(
    cfg: SimulationConfig,
    work: list[tuple[Scenario, tuple[Strategy, ...], int]],
    seed: int,
    progress: Progress | None = None,
) -> Results:
    results: list[RunMetrics] = []
    studies: list[DarkStudyResult] = []
    for scenario, strategies, runs in work:
        for strategy in strategies:
            for run in range(runs):
                world = world_seed(seed, scenario.name, run)
                outcomes = World(scenario, strategy, world, cfg).run()
                results.append(measure(scenario.name, strategy.value, run, world, outcomes))
                if progress is not None:
                    progress.step(f"{scenario.name} {strategy.value}")
        if scenario.dark_study is not None:
            studies.append(study(scenario, world_seed(seed, scenario.name, -1), cfg.routing))
    return Results(results, studies)
