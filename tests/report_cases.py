"""Result files for the report tests: small real runs (simulate --out layout), a compare.json
built from real runs, the hand-built plan.json, and an HTML scanner for data-key/data-value."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from simulator.results.files import write_outputs
from simulator.results.summary import build_summary, summary_json
from simulator.run import simulate
from simulator.scenario import Scenario

PLAN_JSON = Path(__file__).resolve().parent / "data" / "reports" / "plan.json"
BASE = Scenario(num_requests=60, rate=12.0, seed=3)
# A variant that preempts (little KV memory, all requests at t=0), so that path is drawn too.
VARIANTS = ({"max_num_seqs": 16}, {"gpu_memory_utilization": 0.235, "rate": float("inf")})


def write_run(scenario: Scenario, out_dir: Path) -> dict:
    result = simulate(scenario)
    summary = build_summary(result)
    write_outputs(result, summary, out_dir, trace=False)
    return json.loads((out_dir / "summary.json").read_text())


def make_results(root: Path) -> dict:
    """{"base": dir, "variants": [dirs], "compare": compare.json path, "plan": plan.json path}."""
    base_dir = root / "base"
    base = write_run(BASE, base_dir)
    dirs, variants = [], []
    for i, vary in enumerate(VARIANTS):
        d = root / f"variant{i}"
        variants.append({"vary": vary, "summary": write_run(BASE.replace(**vary), d)})
        dirs.append(d)
    compare = {"kind": "compare", "servesim_version": base["servesim_version"], "base": base,
               "variants": variants, "varied_keys": sorted({k for v in VARIANTS for k in v})}
    compare_path = root / "compare.json"
    compare_path.write_text(summary_json(compare))
    return {"base": base_dir, "variants": dirs, "compare": compare_path, "plan": PLAN_JSON}


class ValueScan(HTMLParser):
    """Every element carrying data-value: (tag, class, data-key, data-col, value, shown text)."""

    VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[dict] = []
        self._open: list[tuple[int, dict]] = []  # (stack depth when opened, item)
        self._depth = 0
        self.ids: list[str] = []
        self.scripts_with_src = 0
        self.links = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "script" and a.get("src"):
            self.scripts_with_src += 1
        if tag == "link":
            self.links += 1
        if "data-value" in a:
            item = {"tag": tag, "class": a.get("class", ""), "key": a.get("data-key"), "col": a.get("data-col"),
                    "value": json.loads(a["data-value"]), "text": ""}
            self.items.append(item)
            self._open.append((self._depth, item))
        if tag not in self.VOID:
            self._depth += 1

    def handle_data(self, data):
        for _, item in self._open:
            item["text"] += data

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        self._depth -= 1
        while self._open and self._open[-1][0] >= self._depth:
            self._open.pop()


def scan(html_text: str) -> ValueScan:
    s = ValueScan()
    s.feed(html_text)
    return s
