"""index.html: the results as one self-contained page (inline CSS, JS and data, no network).

One section per template: the parameters that are the same in every run of it (once), charts
of its metrics against the parameters that vary (drawn as inline SVG by the page's script from
the embedded data), and its table of runs. Tables are rendered here, so they read without
JavaScript; the script adds the charts, sorting and filtering. Links are relative to the output
folder: the rendered notebook, the ``.ipynb`` (the ``.failed.ipynb`` for failures) and the log.
"""

import math
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from nbsweep import layout
from nbsweep.canonical import canonical_json
from nbsweep.model.cells import place
from nbsweep.results.html_page import document, embedded, esc, href

LABEL_WIDTH, TEXT_WIDTH = 32, 40  # characters of labels and text values shown in the table
# as `nbsweep status` counts: up to date, stale, failed, interrupted, missing
STATUSES = ("ok", "stale", "failed", "interrupted", "not run")


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell_text(value) -> str:
    """A value as CSV text: empty for None, JSON for booleans, lists and mappings."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return canonical_json(value)
    return str(value)


def display_text(value) -> str:
    """A value as table text: a float's fraction to 4 significant digits, its integer digits never
    rounded (the exact value is the tooltip); other values as recorded."""
    if isinstance(value, float) and math.isfinite(value):
        whole = len(str(int(abs(value)))) if 1 <= abs(value) < 1e15 else 0
        return format(value, f".{max(4, whole)}g")
    return cell_text(value)


def shortened(text: str, limit: int) -> str:
    """Text of at most ``limit`` characters for a narrow place (the full text goes in a tooltip):
    a path keeps its last parts (``…/data/adult.csv``), other text (and a file name too long) its
    start and end (``abc…xyz``). index.js shortens chart labels the same way."""
    if len(text) <= limit:
        return text
    parts = text.split("/")
    if len(parts) > 1 and limit > 8:
        kept = 0
        while kept < len(parts) - 1 and len("…/" + "/".join(parts[-kept - 1 :])) <= limit:
            kept += 1
        return "…/" + ("/".join(parts[-kept:]) if kept else shortened(parts[-1], limit - 2))
    head = -(-(limit - 1) // 2)
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def tally(rows: list[dict], separator: str = ", ") -> str:
    """How many runs are in each state, as ``nbsweep status`` counts them: "4 ok, 9 stale"."""
    counts = Counter(r["status"] for r in rows)
    return separator.join(f"{counts[s]} {s}" for s in STATUSES if counts[s])


def local_time(stamp: str | None) -> str:
    """papermill's UTC ISO time as local ``YYYY-MM-DD HH:MM:SS``."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return stamp or ""


def html_link(path: str | None, base: Path, text: str) -> str:
    if not path:
        return ""
    return f'<a href="{esc(href(path, base))}">{esc(text)}</a>'


def defaulted(r: dict, column: str) -> bool:
    """Whether a ``params.`` column's value came from the template's defaults."""
    return column.split(".")[1] in (r.get("default_params") or [])


def header(column: str) -> str:
    group, _, name = column.partition(".")
    kinds = {"params": ("param", "parameter"), "metrics": ("metric", "metric")}
    if group in kinds and name:
        css, kind = kinds[group]
        return f'<th class="{css}" scope="col"><button type="button">{esc(name)}</button><small>{kind}</small></th>'
    title = {"duration_s": "duration (s)", "start_time": "started"}.get(column, column)
    return f'<th class="{column}" scope="col"><button type="button">{esc(title)}</button></th>'


def value_cell(value, default: bool = False) -> str:
    """A value's cell: numbers with their exact value as tooltip, long text shortened with its full text as tooltip."""
    css, title = (["default"], "template default: ") if default else ([], "")
    if number(value):
        return f'<td class="{" ".join(["num", *css])}" data-sort="{value!r}" title="{esc(title + repr(value))}">{esc(display_text(value))}</td>'
    full = display_text(value)
    short = shortened(full, TEXT_WIDTH)
    attrs = (f' class="{" ".join(css)}"' if css else "") + (f' title="{esc(title + full)}"' if default or short != full else "")
    return f"<td{attrs}>{esc(short)}</td>"


def label_cell(label: str) -> str:
    """The run's label, the column kept in view when the table scrolls sideways."""
    short = shortened(label, LABEL_WIDTH)
    title = f' title="{esc(label)}"' if short != label else ""
    return f'<td class="label"{title}>{esc(short)}</td>'


def error_text(r: dict) -> str:
    if not (r.get("error_name") or r.get("error_message")):
        return ""
    where = esc(place({"cell_index": r.get("error_cell_index"), "cell_line": r.get("error_cell_line")}))
    return f'{esc(r.get("error_name") or "")}: {esc(r.get("error_message") or "")} <span class="where">{where}</span>'


def run_id(r: dict) -> str:
    return f"{r['template']}/{r['label']}"


def compare_href(template: str, label: str = "") -> str:
    """The link to a template's runs side by side (to one run in it: ``#<label>``)."""
    return quote(f"{template}/{layout.COMPARE_PAGE}") + (f"#{quote(label)}" if label else "")


def row_html(r: dict, varying: list[str], base: Path) -> str:
    status = r["status"]
    stale = ""
    if r["stale"] and status != "stale":
        stale = ' <span class="badge stale" title="made from an older configuration">changed since</span>'
    notebook_text = "failed.ipynb" if status == "failed" else "ipynb"
    files = " ".join(
        filter(
            None,
            [
                html_link(r["html"], base, "html"),
                html_link(r["notebook"], base, notebook_text),
                html_link(r["log"], base, "log"),
                html_link(r.get("previous"), base, "previous good"),
                f'<a href="{esc(compare_href(r["template"], r["label"]))}">compare</a>' if r["notebook"] else "",
            ],
        )
    )
    cells = [
        label_cell(r["label"]),
        f'<td class="status"><span class="badge">{esc(status)}</span>{stale}</td>',
        f'<td class="files">{files}</td>',
        *(value_cell(r.get(column), column.startswith("params.") and defaulted(r, column)) for column in varying),
        f"<td>{esc(local_time(r['start_time']))}</td>",
        value_cell(r["duration_s"]),
        f'<td class="error">{error_text(r)}</td>',
    ]
    css = "st-" + status.replace(" ", "-")
    return f'<tr class="{css}" data-status="{esc(status)}" data-run="{esc(run_id(r))}">{"".join(cells)}</tr>'


def split_parameters(rows: list[dict], columns: list[str]) -> tuple[list[str], list[str]]:
    """(constant, varying) ``params.`` columns of one template's rows; columns empty in all are dropped."""
    constant, varying = [], []
    for column in columns:
        values = {canonical_json(r.get(column)) for r in rows}
        if values == {"null"}:
            continue
        (constant if len(values) == 1 else varying).append(column)
    return constant, varying


def constants_html(rows: list[dict], constant: list[str]) -> str:
    if not constant:
        return ""
    items = []
    for column in constant:
        default = all(defaulted(r, column) for r in rows)
        mark = ' <small title="the template\'s default: no run sets it">default</small>' if default else ""
        value = rows[0].get(column)
        text = display_text(value) if number(value) else canonical_json(value)
        items.append(f'<span class="const{" default" if default else ""}"><b>{esc(column[7:])}</b> = {esc(text)}{mark}</span>')
    return f'<p class="constants">Same in every run: {", ".join(items)}</p>'


def section(template: str, rows: list[dict], columns: list[str], base: Path) -> str:
    """One template's section: constant parameters, a place for its charts, its table."""
    constant, varying = split_parameters(rows, [c for c in columns if c.startswith("params.")])
    metrics = [c for c in columns if c.startswith("metrics.") and any(r.get(c) is not None for r in rows)]
    heads = "".join(header(h) for h in ["label", "status", "files", *varying, *metrics, "start_time", "duration_s", "error"])
    body = "\n".join(row_html(r, [*varying, *metrics], base) for r in rows)
    runs = f"{len(rows)} run{'s' if len(rows) != 1 else ''}: {tally(rows, ' · ')}"
    return f"""<section class="template" data-template="{esc(template)}">
<h2>{esc(template)} <small>{esc(runs)}</small> <small class="files"><a href="{esc(compare_href(template))}">runs side by side</a></small></h2>
{constants_html(rows, constant)}
<div class="charts" data-template="{esc(template)}"></div>
<div class="wrap">
<table class="runs">
<thead><tr>{heads}</tr></thead>
<tbody>
{body}
</tbody>
</table>
</div>
</section>"""


def chart_data(rows: list[dict], base: Path) -> str:
    """The runs as JSON for the page's script (safe inside a <script> element)."""
    runs = [
        {
            "run": run_id(r),
            "template": r["template"],
            "label": r["label"],
            "status": r["status"],
            "href": href(r["html"] or r["notebook"], base),
            "params": {k[7:]: v for k, v in r.items() if k.startswith("params.")},
            "defaults": r.get("default_params") or [],
            "metrics": {k[8:]: v for k, v in r.items() if k.startswith("metrics.")},
        }
        for r in rows
    ]
    return embedded(runs)


def page(columns: list[str], rows: list[dict], base: Path) -> str:
    """The whole page; ``base`` is the folder index.html is written to."""
    counts = Counter(r["status"] for r in rows)
    templates = list(dict.fromkeys(r["template"] for r in rows))
    hint = ""
    if counts["ok"] + counts["stale"] and not any(r["html"] for r in rows):
        hint = " Rendered notebooks: run <code>snakemake nbsweep_renderings</code>."
    options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in sorted(templates))
    status_options = "".join(f'<option value="{s}">{s}</option>' for s in STATUSES)
    sections = "\n".join(section(t, [r for r in rows if r["template"] == t], columns, base) for t in templates)
    written = datetime.now().strftime("%Y-%m-%d %H:%M")
    configs = ", ".join(dict.fromkeys(r["config"] for r in rows if r.get("config")))
    of_config = f'\n<p class="meta" id="config">Config: {esc(configs)}</p>' if configs else ""
    body = f"""<h1>nbsweep results</h1>{of_config}
<p class="meta" id="tally">{len(rows)} runs: {tally(rows, " · ") or "none configured"}. Written {written}<span class="files">;
<a href="summary.csv">summary.csv</a>, <a href="summary.json">summary.json</a>.{hint}</span></p>
<div class="controls">
<input id="filter" type="search" placeholder="Filter: words in any column" aria-label="Filter runs">
<select id="status" aria-label="Status"><option value="">every status</option>{status_options}</select>
<select id="template" aria-label="Template"><option value="">every template</option>{options}</select>
<span id="count">{len(rows)} runs</span>
</div>
{sections}
<script type="application/json" id="runs-data">{chart_data(rows, base)}</script>"""
    return document("nbsweep results", "index", body)
