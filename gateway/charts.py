"""matplotlib, the optional `sim` extra: loaded on demand for `sorgw simulate`'s chart and `sorgw tca --format html`."""

from __future__ import annotations

from typing import Any

INSTALL = "pip install 'sor-gateway[sim]'"


class ChartsUnavailable(Exception):
    """matplotlib is not installed (the runtime image leaves it out)."""


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files, no display); ChartsUnavailable naming the extra when absent."""
    try:
        import matplotlib
    except ImportError:
        raise ChartsUnavailable(f"charts need matplotlib, which is not installed: {INSTALL}") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt
