"""Figures of a study in two steps, as Optuna's visualization does: ``views`` computes small
data tuples from the trials; ``plotly`` (HTML) and ``matplotlib`` (PNG) draw the same data."""

from studies.results.plots import matplotlib, plotly, views

__all__ = ["matplotlib", "plotly", "views"]
