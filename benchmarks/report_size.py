"""Report size and open time for a large run (issue 8: under 10 MB, charts drawn in under 3 s).

    python benchmarks/report_size.py                       # simulate 100k requests at 40 req/s first
    python benchmarks/report_size.py --run DIR             # an existing `servesim simulate --out DIR`

Prints one table: simulate / render wall time, page size, and what headless Chromium saw.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import render_report  # noqa: E402
from reports.browser import check_page, find_chromium  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="existing run directory (default: simulate one)")
    p.add_argument("--num-requests", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=40.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="servesim-report-bench-") as tmp:
        run_dir, sim_s = args.run, float("nan")
        if run_dir is None:
            from simulator.cli import main as cli

            run_dir = Path(tmp) / "run"
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                cli(["simulate", "--num-requests", str(args.num_requests), "--rate", str(args.rate),
                     "--out", str(run_dir), "--json"])
            sim_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        page = render_report([run_dir], Path(tmp) / "report.html")
        render_s = time.perf_counter() - t0
        rows = [("simulate wall (s)", f"{sim_s:.1f}"), ("render wall (s)", f"{render_s:.2f}"),
                ("report size (MB)", f"{page.stat().st_size / 1e6:.2f}")]
        if find_chromium():
            c = check_page(page)
            rows += [("charts drawn / total", f"{len(c.rendered)} / {len(c.charts)}"),
                     ("console messages", str(len(c.console))),
                     ("charts drawn after navigation start (ms)", f"{c.render_ms:.0f}"),
                     ("chromium process wall (s)", f"{c.wall_s:.2f}")]
        else:
            rows.append(("browser", "no chromium on PATH"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
