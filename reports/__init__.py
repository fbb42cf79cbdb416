"""HTML reports from saved servesim results: run, comparison and capacity-plan pages.

Reads result files (summary.json, requests.csv, steps.csv, compare.json, plan.json) or plain
dicts; imports nothing from simulator/, profiles/ or hardware/. plotly (the `report` extra) is
imported only when a report is rendered.
"""
from __future__ import annotations


def render_report(sources, out_path):
    """Render `sources` (paths or dicts; see reports.render) to one self-contained HTML file."""
    from reports.render import render_report as _render

    return _render(sources, out_path)


__all__ = ["render_report"]
