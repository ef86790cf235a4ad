"""index.html: the results table as one self-contained page (inline CSS and JS, no network).

Rows are rendered here, so the page reads without JavaScript; the script adds sorting and
filtering. Links are relative to the output folder: the rendered notebook, the ``.ipynb`` (the
``.failed.ipynb`` for failures) and the log.
"""

import html
import os
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from .canonical import canonical_json

ASSETS = Path(__file__).parent / "assets"
STATUSES = ("ok", "failed", "not run")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell_text(value) -> str:
    """A value as CSV text: empty for None, JSON for booleans, lists and mappings."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return canonical_json(value)
    return str(value)


def shown(value) -> str:
    """A value as table text: floats to 4 significant digits (the full value is the tooltip)."""
    return format(value, ".4g") if isinstance(value, float) else cell_text(value)


def local_time(stamp: str | None) -> str:
    """papermill's UTC ISO time as local ``YYYY-MM-DD HH:MM:SS``."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return stamp or ""


def link(path: str | None, base: Path, text: str) -> str:
    if not path:
        return ""
    href = quote(Path(os.path.relpath(path, base)).as_posix())
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def header(column: str) -> str:
    group, _, name = column.partition(".")
    kinds = {"params": ("param", "parameter"), "metrics": ("metric", "metric")}
    if group in kinds and name:
        css, kind = kinds[group]
        return f'<th class="{css}" scope="col"><button type="button">{esc(name)}</button><small>{kind}</small></th>'
    title = {"duration_s": "duration (s)", "start_time": "started"}.get(column, column)
    return f'<th class="{column}" scope="col"><button type="button">{esc(title)}</button></th>'


def value_cell(value) -> str:
    if number(value):
        return f'<td class="num" data-sort="{value!r}" title="{esc(value)}">{esc(shown(value))}</td>'
    return f"<td>{esc(shown(value))}</td>"


def row_html(r: dict, varying: list[str], base: Path) -> str:
    status = r["status"]
    stale = ' <span class="badge stale" title="made from an older configuration">stale</span>' if r["stale"] else ""
    started = local_time(r["start_time"])
    error = ""
    if r["error_name"] or r["error_message"]:
        where = f' <span class="where">in cell #{r["error_cell_index"] + 1}</span>' if number(r["error_cell_index"]) else ""
        error = f'{esc(r["error_name"] or "")}: {esc(r["error_message"] or "")}{where}'
    notebook_text = "failed.ipynb" if status == "failed" else "ipynb"
    files = " ".join(filter(None, [link(r["html"], base, "html"), link(r["notebook"], base, notebook_text), link(r["log"], base, "log")]))
    cells = [
        f'<td>{esc(r["template"])}</td>',
        f'<td>{esc(r["label"])}</td>',
        f'<td class="status"><span class="badge">{esc(status)}</span>{stale}</td>',
        *(value_cell(r[column]) for column in varying),
        f"<td>{esc(started)}</td>",
        value_cell(r["duration_s"]),
        f'<td class="error">{error}</td>',
        f'<td class="files">{files}</td>',
    ]
    css = "st-" + status.replace(" ", "-")
    return f'<tr class="{css}" data-status="{esc(status)}" data-template="{esc(r["template"])}">{"".join(cells)}</tr>'


def page(columns: list[str], rows: list[dict], base: Path) -> str:
    """The whole page; ``base`` is the folder index.html is written to."""
    varying = [c for c in columns if c.startswith(("params.", "metrics."))]
    counts = Counter(r["status"] for r in rows)
    tally = " · ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    templates = sorted({r["template"] for r in rows})
    hint = ""
    if counts["ok"] and not any(r["html"] for r in rows):
        hint = " Rendered notebooks: run <code>snakemake report_index</code>."
    heads = ["template", "label", "status", *varying, "start_time", "duration_s", "error", "files"]
    options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in templates)
    status_options = "".join(f'<option value="{s}">{s}</option>' for s in STATUSES)
    written = datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nbsweep results</title>
<style>
{(ASSETS / "index.css").read_text(encoding="utf-8")}</style>
</head>
<body>
<h1>nbsweep results</h1>
<p class="meta">{len(rows)} runs: {tally or "none configured"}. Written {written}<span class="files">;
<a href="summary.csv">summary.csv</a>, <a href="summary.json">summary.json</a>.{hint}</span></p>
<div class="controls">
<input id="filter" type="search" placeholder="Filter: words in any column" aria-label="Filter runs">
<select id="status" aria-label="Status"><option value="">every status</option>{status_options}</select>
<select id="template" aria-label="Template"><option value="">every template</option>{options}</select>
<span id="count">{len(rows)} runs</span>
</div>
<div class="wrap">
<table id="runs">
<thead><tr>{"".join(header(h) for h in heads)}</tr></thead>
<tbody>
{chr(10).join(row_html(r, varying, base) for r in rows)}
</tbody>
</table>
</div>
<script>
{(ASSETS / "index.js").read_text(encoding="utf-8")}</script>
</body>
</html>
"""
