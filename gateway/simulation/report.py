"""What `sorgw simulate` prints and writes: a table per scenario, CSV files, a PNG chart."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gateway.charts import pyplot
from gateway.simulation.darkstudy import DarkStudyResult
from gateway.simulation.metrics import RunMetrics
from gateway.simulation.runner import Results


@dataclass(frozen=True, slots=True)
class Stat:
    mean: float
    se: float  # standard error of the mean; nan with fewer than two values

    @staticmethod
    def of(values: Sequence[float | None]) -> Stat:
        present = [v for v in values if v is not None]
        if not present:
            return Stat(math.nan, math.nan)
        se = statistics.stdev(present) / math.sqrt(len(present)) if len(present) > 1 else math.nan
        return Stat(statistics.fmean(present), se)


@dataclass(frozen=True, slots=True)
class Summary:
    """One strategy in one scenario, over its runs."""

    scenario: str
    strategy: str
    runs: int
    fill_rate: Stat
    shortfall_bps: Stat
    fees_bps: Stat
    markout_bps: Stat
    opportunity_bps: Stat
    total_bps: Stat
    all_in_bps: Stat
    venue_share: dict[str, float]  # share of all filled shares

    @staticmethod
    def of(runs: list[RunMetrics]) -> Summary:
        def stat(field: Callable[[RunMetrics], float | None]) -> Stat:
            return Stat.of([field(r) for r in runs])

        venue_qty: dict[str, int] = {}
        for run in runs:
            for venue, qty in run.venue_qty.items():
                venue_qty[venue] = venue_qty.get(venue, 0) + qty
        filled = sum(venue_qty.values())
        return Summary(
            runs[0].scenario,
            runs[0].strategy,
            len(runs),
            stat(lambda r: r.fill_rate),
            stat(lambda r: r.shortfall_bps),
            stat(lambda r: r.fees_bps),
            stat(lambda r: r.markout_bps),
            stat(lambda r: r.opportunity_bps),
            stat(lambda r: r.total_bps),
            stat(lambda r: r.all_in_bps),
            {v: q / filled for v, q in sorted(venue_qty.items())},
        )


def summarise(results: Results) -> list[Summary]:
    groups: dict[tuple[str, str], list[RunMetrics]] = {}
    for run in results.runs:
        groups.setdefault((run.scenario, run.strategy), []).append(run)
    return [Summary.of(runs) for runs in groups.values()]


# --- the table ----------------------------------------------------------------------------------

_COLUMNS = ("strategy", "shortfall", "±se", "fees", "markout", "±se", "opport", "all-in", "±se", "fill", "venues")
_ROW = "{:<10} {:>9} {:>6} {:>6} {:>8} {:>6} {:>7} {:>7} {:>6} {:>6}  {}"


def print_table(summaries: list[Summary], studies: list[DarkStudyResult], seed: int, out: TextIO) -> None:
    """A fixed-width table per scenario (bps of the arrival mid; * marks the lowest all-in cost)."""
    scenarios = list(dict.fromkeys(s.scenario for s in summaries))
    for name in scenarios:
        rows = [s for s in summaries if s.scenario == name]
        best = min((s.all_in_bps.mean for s in rows if not math.isnan(s.all_in_bps.mean)), default=math.nan)
        print(f"\n{name}: {rows[0].runs} runs per strategy, seed {seed}; bps of the arrival mid", file=out)
        print(_ROW.format(*_COLUMNS), file=out)
        for s in rows:
            mark = "*" if s.all_in_bps.mean == best else " "
            print(
                _ROW.format(
                    s.strategy,
                    _num(s.shortfall_bps.mean),
                    _num(s.shortfall_bps.se),
                    _num(s.fees_bps.mean),
                    _num(s.markout_bps.mean),
                    _num(s.markout_bps.se),
                    _num(s.opportunity_bps.mean),
                    _num(s.all_in_bps.mean) + mark,
                    _num(s.all_in_bps.se),
                    f"{s.fill_rate.mean:.0%}",
                    " ".join(f"{v} {share:.0%}" for v, share in s.venue_share.items()) or "-",
                ),
                file=out,
            )
    for study in studies:
        print(
            f"\n{study.scenario}: dark allocation, {study.qty} shares over {study.episodes} episodes; "
            f"mean fill over the last {study.last}",
            file=out,
        )
        print(
            f"  adaptive {study.adaptive:8.1f}   equal split {study.equal:8.1f}   oracle {study.oracle:8.1f} "
            f"(expected {study.oracle_expected:.1f})   adaptive/oracle {study.ratio:.3f}",
            file=out,
        )
        print(
            f"  oracle split {_split(study.oracle_allocation)}; adaptive's last split "
            f"{_split(study.adaptive_allocation)}",
            file=out,
        )


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _split(allocation: dict[str, int]) -> str:
    return " ".join(f"{pool} {qty}" for pool, qty in allocation.items()) or "-"


# --- files --------------------------------------------------------------------------------------


def write_csvs(results: Results, summaries: list[Summary], out_dir: Path) -> list[Path]:
    runs_path, summary_path = out_dir / "runs.csv", out_dir / "summary.csv"
    _write(
        runs_path,
        [
            "scenario",
            "strategy",
            "run",
            "seed",
            "qty",
            "filled",
            "fill_rate",
            "avg_px",
            "shortfall_bps",
            "fees_bps",
            "markout_bps",
            "opportunity_bps",
            "total_bps",
            "all_in_bps",
            "venues",
        ],
        [
            [
                r.scenario,
                r.strategy,
                r.run,
                r.seed,
                r.qty,
                r.filled,
                _f(r.fill_rate),
                "" if r.avg_px is None else f"{r.avg_px:.6f}",
                _f(r.shortfall_bps),
                _f(r.fees_bps),
                _f(r.markout_bps),
                _f(r.opportunity_bps),
                _f(r.total_bps),
                _f(r.all_in_bps),
                " ".join(f"{v}:{q}" for v, q in r.venue_qty.items()),
            ]
            for r in results.runs
        ],
    )
    stats = ("fill_rate", "shortfall_bps", "fees_bps", "markout_bps", "opportunity_bps", "total_bps", "all_in_bps")
    _write(
        summary_path,
        ["scenario", "strategy", "runs", *(f"{n}{part}" for n in stats for part in ("", "_se")), "venue_share"],
        [
            [
                s.scenario,
                s.strategy,
                s.runs,
                *(_f(x) for n in stats for x in (getattr(s, n).mean, getattr(s, n).se)),
                " ".join(f"{v}:{share:.4f}" for v, share in s.venue_share.items()),
            ]
            for s in summaries
        ],
    )
    paths = [runs_path, summary_path]
    if results.dark_studies:
        dark_path = out_dir / "dark_study.csv"
        _write(
            dark_path,
            [
                "scenario",
                "qty",
                "episodes",
                "last",
                "adaptive",
                "equal",
                "oracle",
                "oracle_expected",
                "adaptive_over_oracle",
                "oracle_allocation",
                "adaptive_allocation",
            ],
            [
                [
                    d.scenario,
                    d.qty,
                    d.episodes,
                    d.last,
                    _f(d.adaptive),
                    _f(d.equal),
                    _f(d.oracle),
                    _f(d.oracle_expected),
                    _f(d.ratio),
                    _alloc(d.oracle_allocation),
                    _alloc(d.adaptive_allocation),
                ]
                for d in results.dark_studies
            ],
        )
        paths.append(dark_path)
    return paths


def write_chart(
    summaries: list[Summary], path: Path, studies: Sequence[DarkStudyResult] = (), seed: int | None = None
) -> Path:
    """chart_figure saved as a PNG."""
    plt = pyplot()
    fig = chart_figure(summaries, studies, seed)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def chart_figure(summaries: list[Summary], studies: Sequence[DarkStudyResult] = (), seed: int | None = None) -> Any:
    """One panel per scenario (each strategy's shortfall, markout and all-in cost with standard-error bars, on
    the panel's own scale and labelled with its unit) and one per dark allocation study (the adaptive fill as a
    share of the oracle's, episode by episode), under a title with the seed and the runs: a matplotlib Figure."""
    plt = pyplot()
    scenarios = list(dict.fromkeys(s.scenario for s in summaries))
    panels = len(scenarios) + len(studies)
    columns = min(4, panels)
    rows_of_panels = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(4.8 * columns, 4 * rows_of_panels + 1.2), squeeze=False)
    flat = [ax for row in axes for ax in row]
    measures = (("shortfall", "shortfall_bps"), ("markout", "markout_bps"), ("all-in", "all_in_bps"))
    width = 0.8 / len(measures)
    for ax, name in zip(flat, scenarios):
        rows = [s for s in summaries if s.scenario == name]
        for i, (label, field) in enumerate(measures):
            stats = [getattr(s, field) for s in rows]
            ax.bar(
                [x + (i - 1) * width for x in range(len(rows))],
                [_zero(s.mean) for s in stats],
                width,
                yerr=[_zero(s.se) for s in stats],
                capsize=2,
                label=label,
            )
        ax.set_xticks(range(len(rows)), [s.strategy for s in rows], rotation=30)
        ax.set_title(f"{name} ({_runs(rows)})", fontsize="medium")
        ax.set_ylabel("bps of the arrival mid (lower is better)")
        ax.axhline(0, color="black", linewidth=0.5)
    for ax, study in zip(flat[len(scenarios) :], studies):
        starts = [start for start, _ in study.curve]
        ax.plot(starts, [ratio for _, ratio in study.curve], marker=".", color="tab:purple")
        ax.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(
            "0.95 of the oracle", (0, 0.95), xytext=(2, 3), textcoords="offset points", fontsize="small", color="grey"
        )
        if study.change_at is not None:
            ax.axvline(study.change_at, color="tab:red", linewidth=0.8)
            ax.annotate(
                "pools change",
                (study.change_at, 0.05),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize="small",
                color="tab:red",
            )
        ax.set_ylim(0, 1.1)
        ax.set_title(f"{study.scenario}: dark allocation ({study.qty} shares an episode)", fontsize="medium")
        ax.set_xlabel("episode")
        ax.set_ylabel("adaptive fill / oracle fill")
    for ax in flat[panels:]:
        ax.set_visible(False)
    if scenarios:
        handles, labels = flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(measures), frameon=False)
    fig.suptitle(
        "sorgw simulate" + ("" if seed is None else f", seed {seed}") + ": cost per strategy, mean of the "
        "runs with ±1 standard error"
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig


def _runs(rows: Sequence[Summary]) -> str:
    runs = {s.runs for s in rows}
    return f"{runs.pop()} runs per strategy" if len(runs) == 1 else f"{min(runs)}-{max(runs)} runs per strategy"


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _f(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.6f}"


def _zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def _alloc(allocation: dict[str, int]) -> str:
    return " ".join(f"{pool}:{qty}" for pool, qty in allocation.items())
