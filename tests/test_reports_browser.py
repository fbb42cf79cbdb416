"""Every kind of report opened from disk in headless Chromium: no console messages, every chart
drawn, a screenshot saved; a deliberately broken page is caught; a 100k-request run's report
stays under 10 MB and draws in under 3 s.

Skipped without chromium (Debian: apt-get install chromium; .ci/run installs it). Set
SERVESIM_SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("plotly", reason="reports need the `report` extra (plotly)")

from reports import render_report  # noqa: E402
from reports.browser import check_page, find_chromium  # noqa: E402
from tests.report_cases import make_results  # noqa: E402

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no chromium on PATH (apt-get install chromium)")
CASES = {  # name -> (sources from make_results, expected chart ids, screenshot height)
    "run": (lambda r: [r["variants"][1]],
            ["fig-cdf", "fig-throughput", "fig-batch", "fig-kv", "fig-steps", "fig-roofline", "fig-eflops"], 5200),
    "compare_runs": (lambda r: [r["base"], *r["variants"]], ["fig-cdf", "fig-bars"], 2000),
    "compare_json": (lambda r: [r["compare"]], ["fig-cdf", "fig-bars"], 2000),
    "plan": (lambda r: [r["plan"]], ["fig-pareto", "fig-rates", "fig-probes"], 2300),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


def _keep(png: Path | None) -> None:
    keep = os.environ.get("SERVESIM_SCREENSHOT_DIR")
    if keep and png is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


@pytest.mark.parametrize("case", list(CASES))
def test_report_opens_clean_with_every_chart(case, results, tmp_path):
    sources, charts, height = CASES[case]
    page = render_report(sources(results), tmp_path / f"{case}.html")
    check = check_page(page, screenshot=tmp_path / f"report_{case}.png", window=(1400, height))
    _keep(check.screenshot)
    assert check.console == []
    assert check.charts == charts and check.missing == []
    assert check.screenshot is not None and check.screenshot.stat().st_size > 20_000
    assert check.render_ms is not None


def test_broken_page_is_caught(results, tmp_path):
    """Negative test: a script error shows up as a console message, an undrawn chart as missing."""
    good = render_report([results["base"]], tmp_path / "good.html").read_text()
    broken = good.replace('Plotly.newPlot(                        "fig-kv"',
                          'Plotly.newPlot(                        "fig-kv-typo"', 1)
    assert broken != good
    broken = broken.replace("</main>", '<div id="fig-empty" class="plotly-graph-div"></div>'
                                       '<script>console.error("deliberate console error")</script></main>')
    (tmp_path / "broken.html").write_text(broken)
    check = check_page(tmp_path / "broken.html")
    assert check.missing == ["fig-kv", "fig-empty"]
    assert any("deliberate console error" in m for m in check.console)
    assert any("fig-kv-typo" in m for m in check.console)  # plotly: no DOM element with that id


@pytest.mark.slow
def test_100k_request_report_is_light_and_fast(tmp_path):
    """`servesim simulate --num-requests 100000 --rate 40 --out DIR`, then its report."""
    from simulator.cli import main

    assert main(["simulate", "--num-requests", "100000", "--rate", "40", "--out", str(tmp_path / "run"),
                 "--json"]) == 0
    page = render_report([tmp_path / "run"], tmp_path / "report_100k.html")
    size = page.stat().st_size
    check = check_page(page, screenshot=tmp_path / "report_100k.png", window=(1400, 5200))
    _keep(check.screenshot)
    # open time on a shared 2-core machine (the other test worker runs beside it): best of 3 loads
    render_ms = min([check.render_ms] + [check_page(page).render_ms for _ in range(2)])
    print(f"100k report: {size / 1e6:.2f} MB, charts drawn {render_ms:.0f} ms after navigation "
          f"start (best of 3), chromium run {check.wall_s:.2f} s")
    assert size < 10_000_000
    assert check.console == [] and check.missing == [] and len(check.charts) == 7
    assert render_ms < 3000
