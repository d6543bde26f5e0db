"""The shipped learning scenarios of config/simulate.yaml, run small and seeded: cost passes a better-priced
toxic venue and wins on all-in, a venue that cleans up wins the flow back, the dark allocator recovers from a
regime change."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.types import Strategy
from gateway.simulation.darkstudy import study
from gateway.simulation.metrics import measure
from gateway.simulation.runner import world_seed
from gateway.simulation.scenarios import ParentSpec, Scenario, SimulationConfig, load
from gateway.simulation.world import World

CONFIG = load(Path(__file__).parents[2] / "config" / "simulate.yaml")


def scenario(name: str) -> Scenario:
    return next(s for s in CONFIG.scenarios if s.name == name)


def outcomes(name: str, strategy: Strategy, run: int, cfg: SimulationConfig = CONFIG):
    return World(scenario(name), strategy, world_seed(CONFIG.seed, name, run), cfg).run()


@pytest.mark.parametrize("run", [0, 1])
def test_cost_passes_the_better_priced_toxic_venue_and_wins_on_all_in(run):
    name = "toxic-better-price"
    sweep = measure(name, "sweep", run, 0, outcomes(name, Strategy.SWEEP, run))
    cost = measure(name, "cost", run, 0, outcomes(name, Strategy.COST, run))
    assert sweep.venue_qty == {"TOXV": sweep.filled}  # the better price, every time
    assert cost.venue_qty["TOXV"] < 0.8 * cost.filled
    assert cost.filled == sweep.filled
    assert cost.all_in_bps < sweep.all_in_bps


def all_toxv(parents) -> list[bool]:
    """Per parent in arrival order: did TOXV fill all of it?"""
    return [bool(p.filled) and all(f.venue == "TOXV" for f in p.fills) for p in parents]


@pytest.mark.parametrize("run", [0, 1])
def test_a_venue_that_cleans_up_wins_the_flow_back_within_40_parents(run):
    spec = scenario("toxic-cleans-up")
    clean = next(v.clean_after_ms for v in spec.venues if v.name == "TOXV")
    first_clean = next(i for i, p in enumerate(spec.parents) if p.at_ms >= clean)
    everything = all_toxv(sorted(outcomes(spec.name, Strategy.COST, run), key=lambda p: p.arrival_ns))
    assert not any(everything[6:first_clean])  # passed while toxic
    back = next(i for i in range(first_clean, len(everything)) if all(everything[i:]))
    assert back - first_clean <= 40
    off = CONFIG.model_copy(
        update={
            "routing": CONFIG.routing.model_copy(
                update={"cost": CONFIG.routing.cost.model_copy(update={"explore_every": 0})}
            )
        }
    )
    never = all_toxv(outcomes(spec.name, Strategy.COST, run, off))
    assert not any(never[first_clean:])  # without exploration it never comes back


def test_the_allocator_recovers_from_the_regime_change_to_95_percent_of_the_oracle_within_300_episodes():
    spec = scenario("dark-regime-change")
    result = study(spec, world_seed(CONFIG.seed, spec.name, -1), CONFIG.routing)
    assert result.change_at == 300 and result.episodes - result.last - result.change_at <= 200
    assert result.ratio >= 0.95  # over episodes 500-600: 200-300 after the change
    after = [ratio for start, ratio in result.curve if start >= 300]
    assert min(after) < 0.9  # the change did bite
    plain = study(
        spec, world_seed(CONFIG.seed, spec.name, -1), CONFIG.routing.model_copy(update={"dark_change_threshold": None})
    )
    assert plain.ratio < result.ratio


def test_repeated_parents_are_spaced_by_every_ms():
    spec = scenario("toxic-cleans-up")
    assert len(spec.parents) == 80
    assert [p.at_ms for p in spec.parents[:3]] == [0, 250, 500]
    assert all(isinstance(p, ParentSpec) and p.repeat == 1 for p in spec.parents)


def test_each_chart_panel_reads_on_its_own():
    from matplotlib import pyplot as plt

    from gateway.simulation import report, runner

    work = runner.plan(CONFIG, ["toxic-better-price", "dark-regime-change"], runs=2)
    results = runner.simulate(CONFIG, work, seed=CONFIG.seed)
    fig = report.chart_figure(report.summarise(results), results.dark_studies, CONFIG.seed)
    try:
        assert "seed 42" in fig._suptitle.get_text()
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert len(panels) == 3
        scenario_panels, (study,) = panels[:2], panels[2:]
        for ax in scenario_panels:
            assert ax.get_ylabel() == "bps of the arrival mid (lower is better)"
            assert "2 runs per strategy" in ax.get_title()
            assert ax.get_legend() is None  # the legend is the figure's, below the panels
        assert len(fig.legends) == 1
        assert study.get_ylabel() == "adaptive fill / oracle fill" and study.get_xlabel() == "episode"
        assert any(list(line.get_xdata()) == [300, 300] for line in study.get_lines())  # the change is marked
        assert scenario_panels[0].get_ylim() != scenario_panels[1].get_ylim()  # each on its own scale
    finally:
        plt.close(fig)
