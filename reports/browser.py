"""Open a report in headless Chromium (the Debian `chromium` package): console messages, which
charts rendered, how long the page took, and a screenshot.

Owns the browser check used by the tests and benchmarks/report_size.py. Uses only the
chromium command line: `--dump-dom` (DOM after the load event) with `--enable-logging=stderr`
(every console message is logged as an `INFO:CONSOLE` line) and `--screenshot`. No driver,
no extra Python packages.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--enable-logging=stderr", "--v=0")
VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
CONSOLE_LINE = re.compile(r":CONSOLE[:(\d)]*\]?\s*(.*)$")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass(slots=True)
class PageCheck:
    """What the browser saw: console messages, chart divs and those with a drawn plot."""

    console: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    render_ms: float | None = None
    wall_s: float = 0.0
    screenshot: Path | None = None

    @property
    def missing(self) -> list[str]:
        return [c for c in self.charts if c not in self.rendered]


class _ChartScan(HTMLParser):
    """Chart divs (class plotly-graph-div) and whether each holds an svg.main-svg and a trace."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str | None] = []  # chart id owning each open element, or None
        self.charts: list[str] = []
        self.has_svg: set[str] = set()
        self.has_trace: set[str] = set()
        self.render_ms: float | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        owner = self.stack[-1] if self.stack else None
        if tag == "body" and a.get("data-render-ms"):
            self.render_ms = float(a["data-render-ms"])
        if tag == "div" and "plotly-graph-div" in classes:
            owner = a.get("id") or f"chart-{len(self.charts)}"
            self.charts.append(owner)
        if owner and "main-svg" in classes:
            self.has_svg.add(owner)
        if owner and "trace" in classes:
            self.has_trace.add(owner)
        if tag not in VOID_TAGS:
            self.stack.append(owner)

    def handle_startendtag(self, tag, attrs):  # <x/>: opens and closes at once
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.stack:
            self.stack.pop()

    def handle_endtag(self, tag):
        if self.stack and tag not in VOID_TAGS:
            self.stack.pop()


def _run(chromium: str, args: list[str], timeout_s: float) -> tuple[str, str, float]:
    with tempfile.TemporaryDirectory(prefix="servesim-chromium-") as profile:
        t0 = time.perf_counter()
        proc = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout_s)
        wall = time.perf_counter() - t0
    if proc.returncode != 0 and not proc.stdout:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout, proc.stderr, wall


def console_messages(stderr: str) -> list[str]:
    return [m.group(1) for line in stderr.splitlines() if (m := CONSOLE_LINE.search(line))]


def check_page(html_path: Path, *, screenshot: Path | None = None, window: tuple[int, int] = (1400, 4000),
               chromium: str | None = None, timeout_s: float = 120) -> PageCheck:
    """Load `html_path` from disk; optionally screenshot it at `window` size (CSS pixels)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    url = Path(html_path).resolve().as_uri()
    args = ["--dump-dom"]
    if screenshot is not None:  # one browser run does both
        screenshot = Path(screenshot).resolve()
        args += [f"--screenshot={screenshot}", f"--window-size={window[0]},{window[1]}"]
    dom, err, wall = _run(chromium, [*args, url], timeout_s)
    scan = _ChartScan()
    scan.feed(dom)
    return PageCheck(console=console_messages(err), charts=scan.charts,
                     rendered=[c for c in scan.charts if c in scan.has_svg and c in scan.has_trace],
                     render_ms=scan.render_ms, wall_s=wall,
                     screenshot=screenshot if screenshot is not None and screenshot.is_file() else None)
