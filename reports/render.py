"""Entry point of reports/: saved results in, one self-contained HTML file out.

Owns the dispatch on what was given: one run (a `simulate --out` directory, its summary.json,
or a summary dict) -> a run report; several runs -> a comparison of them (the first is the
base); a compare.json / plan.json (or their dicts, "kind": "compare" | "plan") -> that report.
"""
from __future__ import annotations

from pathlib import Path

from reports.results import RunData, load_source


def render_html(sources) -> str:
    """HTML text of the report for `sources` (one source or a list of them)."""
    from reports.compare_report import compare_from_runs, render_compare
    from reports.plan_report import render_plan
    from reports.run_report import render_run

    items = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    if not items:
        raise ValueError("nothing to report: give at least one result")
    loaded = [load_source(s, i) for i, s in enumerate(items)]
    docs = [d for d in loaded if not isinstance(d, RunData)]
    if docs:
        if len(loaded) > 1:
            kinds = sorted({d.get("kind", "run") for d in docs})
            raise ValueError(f"a {'/'.join(kinds)} result is reported on its own; got {len(loaded)} results")
        doc = docs[0]
        return render_plan(doc) if doc["kind"] == "plan" else render_compare(doc)
    if len(loaded) == 1:
        return render_run(loaded[0])
    return compare_from_runs(loaded)


def render_report(sources, out_path) -> Path:
    """Write the report for `sources` (paths or dicts, see module doc) to `out_path`; returns it."""
    out = Path(out_path)
    text = render_html(sources)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
