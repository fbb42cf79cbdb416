"""The HTML page: one self-contained file with plotly.js inlined once, tables and figure divs.

Owns the page skeleton, the style, number formatting and the small HTML builders (tables,
key/value lists, headline cards). Every value shown carries its exact number in `data-value`
so tests (and readers) can check it against the JSON it came from. Knows nothing of runs.
"""
from __future__ import annotations

import html
import json
import math

import plotly.io as pio
from plotly.offline import get_plotlyjs

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:1320px;margin:0 auto;padding:16px 24px 48px}
header{background:#1f2933;color:#fff;padding:18px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cbd2d9;font-size:13px}
section{background:#fff;border:1px solid #e4e7eb;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{border-bottom:1px solid #e4e7eb;padding:4px 10px;text-align:right;vertical-align:top}
th:first-child,td:first-child,th.text{text-align:left}th{background:#f0f4f8}
td.text{text-align:left;max-width:760px;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px 12px;min-width:150px;background:#fbfcfd}
.card .label{font-size:12px;color:#52606d}.card .value{font-size:20px;font-weight:600}
.card .unit{font-size:12px;color:#52606d;margin-left:3px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:12px}
.note{font-size:12px;color:#616e7c;margin:4px 0}.pos{color:#b42318}.neg{color:#027a48}
details summary{cursor:pointer;font-size:13px;color:#334e68}
"""


def fmt(value) -> str:
    """Human-readable number (the exact one goes in data-value)."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "—"
    a = abs(value)
    if a == 0:
        return "0"
    if value.is_integer() and a < 1e7:  # 500.0 -> "500" (an SLO, a count), not "500.0"
        return f"{int(value):,}"
    if a >= 1e7:
        return f"{value:.4g}"
    if a >= 100:
        return f"{value:,.1f}"
    if a >= 1:
        return f"{value:.4g}"
    return f"{value:.4g}"


def data_value(value) -> str:
    """The exact value as JSON (repr of floats round-trips), for the data-value attribute."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "null"
    return html.escape(json.dumps(value), quote=True)


def cell(value, key: str | None = None) -> str:
    cls = "" if isinstance(value, (int, float)) and not isinstance(value, bool) else ' class="text"'
    k = f' data-key="{html.escape(key, quote=True)}"' if key else ""
    return f'<td{cls}{k} data-value="{data_value(value)}">{fmt(value)}</td>'


def table(header: list[str], rows: list[list], *, cls: str = "", keys: list[str] | None = None) -> str:
    """rows of values (numbers formatted, strings escaped); a row of keys tags its first cells."""
    texty = [i == 0 or (bool(rows) and isinstance(rows[0][i], str)) for i in range(len(header))]
    head = "".join(f'<th{" class=text" if t else ""}>{html.escape(h)}</th>' for h, t in zip(header, texty))
    body = []
    for r, row in enumerate(rows):
        key = keys[r] if keys else None
        first = f'<td class="text">{html.escape(str(row[0]))}</td>'
        rest = "".join(cell(v, key) for v in row[1:])
        body.append(f"<tr>{first}{rest}</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def key_values(pairs: list[tuple[str, object]], cls: str = "") -> str:
    rows = "".join(f'<tr><th>{html.escape(k)}</th>{cell(v)}</tr>' for k, v in pairs)
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><tbody>{rows}</tbody></table>"


def card(label: str, key: str, value, unit: str = "", scale: float = 1) -> str:
    """A headline value; shown times `scale` (e.g. 100 for %), data-value keeps the exact original."""
    u = f'<span class="unit">{html.escape(unit)}</span>' if unit else ""
    shown = value * scale if scale != 1 and isinstance(value, (int, float)) else value
    return (f'<div class="card" data-key="{html.escape(key, quote=True)}" data-value="{data_value(value)}">'
            f'<div class="label">{html.escape(label)}</div><div class="value">{fmt(shown)}{u}</div></div>')


def figure_div(fig, div_id: str) -> str:
    """A figure as a div + its newPlot script; plotly.js itself is in the page head, once."""
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOT_CONFIG,
                       validate=False)


def section(title: str, body: str, sid: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def page(title: str, subtitle: str, sections: list[str], kind: str) -> str:
    # The closing script stamps how long the page took to build its charts (navigation start ->
    # every newPlot call done), which the browser test reads.
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f'<body data-report-kind="{kind}"><header><h1>{html.escape(title)}</h1>'
        f"<p>{html.escape(subtitle)}</p></header><main>{''.join(sections)}</main>"
        "<script>document.body.dataset.renderMs=performance.now().toFixed(0);</script>"
        "</body></html>\n"
    )
