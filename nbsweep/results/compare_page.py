"""compare.html: a template's runs side by side, cell by cell, one page per template.

``<output_dir>/<template>/compare.html`` holds the comparison (``nbsweep.results.compare``) as
data, each distinct output once, and its images as files named by content in ``compare.images/``
beside it; its script (assets/compare.js) draws the table for the runs chosen in the page, so
a cell's sameness is recomputed as the choice changes. Works offline from ``file://``. A hidden
file beside the page records a fingerprint of what it was made from (its runs' notebooks' paths,
sizes and times, states and parameters, and the assets): while it is current no notebook is
read; otherwise the page is rewritten only if its text changes (a failed run that executed
again to the same failure leaves it as it is).
"""

import hashlib
import shutil
from pathlib import Path

from nbsweep import layout
from nbsweep.canonical import digest
from nbsweep.files import write_atomically
from nbsweep.masking import mask
from nbsweep.results.compare import Column, Comparison, Output, compare
from nbsweep.results.html_page import ASSETS, document, embedded, esc, href

PAGE, IMAGES = layout.COMPARE_PAGE, layout.COMPARE_IMAGES
TEXT_LIMIT = 20_000  # characters of one output kept in the page; the rendering has the rest
PAGE_BUDGET = 8_000_000  # characters of outputs in one page, beyond which each is cut shorter
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}
STAMP = ".compare.fingerprint"  # beside the page: the fingerprint of what it was made from


def columns_of(rows: list[dict]) -> list[tuple[Column, dict]]:
    """(column, its run's data for the page) of one template's summary rows: each run with a
    notebook, after its previous notebook when one is kept (older on the left)."""
    found = []
    # the summary's columns are every template's: keep the parameters this template's runs have
    names = [
        key for key in dict.fromkeys(k for r in rows for k in r) if key.startswith("params.") and any(r.get(key) is not None for r in rows)
    ]
    for r in rows:
        files = layout.RunFiles(Path(r["target"]))
        if files.previous.is_file():
            column = Column(f"{r['template']}/{r['label']} (previous)", files.previous, "previous")
            rendering = files.previous_html if files.previous_html.is_file() else files.previous
            found.append((column, {"label": f"{r['label']} (previous)", "file": str(rendering), "of": r["label"]}))
        if r.get("notebook"):
            params = {key[7:]: r.get(key) for key in names}
            column = Column(f"{r['template']}/{r['label']}", Path(r["notebook"]), r["status"], params)
            found.append((column, {"label": r["label"], "file": r.get("html") or r["notebook"]}))
    return found


def size_and_time(path: Path | None) -> list[int] | None:
    try:
        status = path.stat() if path else None
    except OSError:
        return None
    return status and [status.st_size, status.st_mtime_ns]


def fingerprint(columns: list[tuple[Column, dict]]) -> str:
    """What a page is made of: each notebook's path, size and time, the runs' states and parameters, the assets."""
    parts = []
    for column, run in columns:
        parts.append([column.name, column.status, column.parameters, run, str(column.notebook), size_and_time(column.notebook)])
    for asset in ("compare.js", "compare.css"):
        parts.append(hashlib.sha256((ASSETS / asset).read_bytes()).hexdigest())
    return digest(parts)


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None


def shown_size(output: Output, limit: int) -> int:
    """The characters of ``output`` a page holds with outputs cut at ``limit`` (``piece``)."""
    if output.kind == "image":
        return len(output.text)
    if output.kind == "error":
        return min(len(output.text), limit) + min(len(output.body), limit)
    html = len(output.body) if output.kind == "html" and len(output.body) <= 10 * limit else 0
    return min(len(output.text), limit) + html


def text_limit(outputs: list[tuple[Output, ...]]) -> int:
    """Where a page cuts its outputs: at TEXT_LIMIT characters, less when its distinct outputs
    would otherwise hold more than PAGE_BUDGET (many runs, each printing much of its own)."""
    limit = TEXT_LIMIT
    while limit > 500 and sum(shown_size(o, limit) for found in outputs for o in found) > PAGE_BUDGET:
        limit //= 2
    return limit


def piece(output: Output, images: dict[str, bytes], limit: int = TEXT_LIMIT) -> dict:
    """An output as the page's script draws it, cut at ``limit`` characters (an HTML output kept
    up to ten times that, else shown as its text); an image's bytes go to ``images`` (file name -> bytes)."""
    if output.kind == "image":
        name = hashlib.sha256(output.body).hexdigest()[:24] + EXTENSIONS[output.mime]
        images[name] = output.body
        return {"k": "image", "src": f"{IMAGES}/{name}", "w": output.width, "h": output.height, "t": output.text}
    text = output.text if len(output.text) <= limit else output.text[:limit] + f"\n… ({len(output.text) - limit} more characters)"
    found = {"k": output.kind, "t": text}
    if output.kind == "html":
        found["html"] = output.body if len(output.body) <= 10 * limit else ""
    elif output.kind == "error":
        found["trace"] = output.body[-limit:]
    elif output.kind == "stream" and output.mime == "stderr":
        found["err"] = True
    return found


def page_data(template: str, comparison: Comparison, runs: list[dict], base: Path, images: dict[str, bytes]) -> dict:
    """The comparison as the page's data: each distinct cell output once (``contents``)."""
    distinct: list[tuple[Output, ...]] = []
    seen: dict[str, int] = {}
    cells = []
    for row in comparison.rows:
        ids = []
        for c, outputs in enumerate(row.outputs):
            key = row.key(c)
            if key is not None and key not in seen:
                seen[key] = len(distinct)
                distinct.append(outputs)
            ids.append(None if key is None else seen[key])
        cells.append({"title": row.title, "type": row.cell_type, "source": row.source[:TEXT_LIMIT], "params": row.parameters, "out": ids})
    listed = [
        {
            "name": column.name,
            "label": run["label"],
            "status": column.status,
            "params": column.parameters,
            "href": href(run["file"], base),
            **({"of": run["of"]} if "of" in run else {}),
        }
        for column, run in zip(comparison.columns, runs, strict=True)
    ]
    limit = text_limit(distinct)
    contents = [[piece(o, images, limit) for o in outputs] for outputs in distinct]
    return {"template": template, "runs": listed, "cells": cells, "contents": contents}


def page(template: str, data: dict, missing: list[str]) -> str:
    note = f'<p class="meta">Without a notebook: {esc(", ".join(missing))}.</p>' if missing else ""
    body = f"""<h1>{esc(template)} <small>runs side by side, cell by cell</small></h1>
<p class="meta"><a href="../index.html">index.html</a></p>{note}
<div id="picker"></div>
<div id="compare"><noscript>This page draws its table with JavaScript.</noscript></div>
<script type="application/json" id="compare-data">{embedded(data)}</script>"""
    return document(f"{template}: runs compared", "compare", body)


def write_page(output_dir: Path, template: str, rows: list[dict], secrets: list[str] | None = None) -> bool:
    """Write one template's compare.html and its images, unless its fingerprint is current or
    the page would be the same as it is (a failed run executed again, say); True if written."""
    folder = output_dir / template
    target, stamp_file = folder / PAGE, folder / STAMP
    columns = columns_of(rows)
    stamp = fingerprint(columns)
    if read_text(stamp_file) == stamp and target.is_file():
        return False
    comparison = compare([column for column, _ in columns], secrets)
    images: dict[str, bytes] = {}
    data = page_data(template, comparison, [run for _, run in columns], folder, images)
    missing = [r["label"] for r in rows if not r.get("notebook")]
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / IMAGES
    if images:
        store.mkdir(exist_ok=True)
    for name, body in images.items():
        if not (store / name).is_file():
            write_atomically(store / name, body)
    for old in store.iterdir() if store.is_dir() else []:
        if old.name not in images and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    text = page(template, data, missing)
    written = read_text(target) != text
    if written:
        write_atomically(target, text)
    write_atomically(stamp_file, stamp)
    return written


def write_pages(output_dir: Path, rows: list[dict], secrets: list[str] | None = None) -> list[str]:
    """Each template's compare.html, from the summary's rows (in config order), secrets masked;
    one sentence per page that could not be written (a full disk, say), which never stops the others."""
    problems = []
    for template in dict.fromkeys(r["template"] for r in rows):
        try:
            write_page(output_dir, template, [r for r in rows if r["template"] == template], secrets)
        except Exception as err:  # noqa: BLE001 -- a finished sweep must not end in a crash over a page
            reason = err.strerror if isinstance(err, OSError) and err.strerror else f"{type(err).__name__}: {err}"
            problems.append(f"could not write {output_dir / template / PAGE}: {mask(reason, secrets or [])}")
    return problems


def remove_page(folder: Path) -> None:
    """Delete a template's compare.html, its fingerprint and its images (its last run is gone)."""
    for path in (folder / PAGE, folder / STAMP):
        path.unlink(missing_ok=True)
    shutil.rmtree(folder / IMAGES, ignore_errors=True)
