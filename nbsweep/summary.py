"""The results table: one row per configured run, rebuilt after every Snakemake invocation.

``write_results(sweep)`` (the Snakefile's onsuccess/onerror handler) writes summary.csv,
summary.json and index.html into the output folder. A row comes from the run's executed notebook
(the target, or the ``.failed.ipynb`` copy): nbsweep's and papermill's metadata, read from the end
of the file where nbformat writes it, and the values ``nbsweep.record`` left in cell outputs.
"""

import csv
import io
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

from . import index, layout
from .index import cell_text
from .jobs import write_atomically
from .record import MIME
from .render import html_path

HEAD = ("template", "label", "status", "stale")
TAIL = (
    "start_time",
    "duration_s",
    "error_name",
    "error_message",
    "error_cell_index",
    "target",
    "notebook",
    "html",
    "log",
)
FILES = ("summary.csv", "summary.json", "index.html")
REFRESH = ".nbsweep-refresh"  # made by a job requested only to get the handlers run
TAIL_BYTES = 1 << 16
_TOP_METADATA = '\n "metadata": '  # nbformat writes with indent=1: only top-level keys sit at one space
_METRICS = re.compile(re.escape(f'"{MIME}": '))
_decoder = json.JSONDecoder()


def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested mappings as one level with dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metadata_in(text: str, whole: bool) -> dict | None:
    """The top-level metadata of notebook JSON ``text`` (the whole file, or only its end)."""
    at = text.rfind(_TOP_METADATA)
    if at >= 0:
        try:
            value, _ = _decoder.raw_decode(text, at + len(_TOP_METADATA))
            if isinstance(value, dict):
                return value
        except ValueError:
            pass
    if whole:  # written by something other than nbformat: parse it all
        try:
            value = json.loads(text).get("metadata")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, dict) else None
    return None


def read_metadata(path: Path) -> dict | None:
    """A notebook's top-level metadata, reading only the end of the file when that suffices."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            found = metadata_in(fh.read().decode("utf-8", "replace"), whole=size <= TAIL_BYTES)
            if found is None and size > TAIL_BYTES:
                fh.seek(0)
                found = metadata_in(fh.read().decode("utf-8", "replace"), whole=True)
    except OSError:
        return None
    return found


def read_result(path: Path) -> tuple[dict, dict]:
    """(metadata, metrics) of an executed notebook; empty where it is missing or unreadable."""
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return {}, {}
    metrics = {}
    for match in _METRICS.finditer(text):  # escaped inside cell sources, so only real outputs match
        try:
            value, _ = _decoder.raw_decode(text, match.end())
        except ValueError:
            continue
        if isinstance(value, dict):
            metrics.update(value)
    return metadata_in(text, whole=True) or {}, metrics


def planned_fingerprint(job_file: Path) -> str | None:
    try:
        return json.loads(job_file.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


def mapping(parent: dict, key: str) -> dict:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def row(run, output_dir: str) -> dict:
    """One run's row: status, parameters, metrics, timing, error and file paths."""
    target = layout.target(output_dir, run.name, run.label)
    failed = layout.failed_copy(target)
    if target.exists():
        status, notebook = "ok", target
    elif failed.exists():
        status, notebook = "failed", failed
    else:
        status, notebook = "not run", None
    metadata, metrics = read_result(notebook) if notebook else ({}, {})
    made, papermill = mapping(metadata, "nbsweep"), mapping(metadata, "papermill")
    error = mapping(made, "error")
    duration = papermill.get("duration")
    html, log = html_path(target), layout.log(target)
    fresh_html = status == "ok" and html.exists() and html.stat().st_mtime_ns >= target.stat().st_mtime_ns
    return {
        "template": run.name,
        "label": run.label,
        "status": status,
        "stale": None if notebook is None else made.get("fingerprint") != planned_fingerprint(layout.job_file(target)),
        **flatten(run.parameters, "params."),
        **flatten(metrics, "metrics."),
        "start_time": papermill.get("start_time"),
        "duration_s": round(duration, 3) if isinstance(duration, (int, float)) else None,
        "error_name": error.get("ename"),
        "error_message": error.get("evalue"),
        "error_cell_index": error.get("cell_index"),
        "target": str(target),
        "notebook": str(notebook) if notebook else None,
        "html": str(html) if fresh_html else None,
        "log": str(log) if log.exists() else None,
    }


def table(rows: list[dict]) -> tuple[list[str], list[dict]]:
    """Columns (fixed ones, then parameters and metrics in first-seen order) and full rows."""
    seen = dict.fromkeys(key for r in rows for key in r if key not in HEAD and key not in TAIL)
    varying = [key for key in seen if key.startswith("params.")] + [key for key in seen if key.startswith("metrics.")]
    columns = [*HEAD, *varying, *TAIL]
    return columns, [{column: r.get(column) for column in columns} for r in rows]


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell_text(r[column]) for column in columns] for r in rows)
    return buffer.getvalue()


def labels(r: dict) -> dict[str, str]:
    """A row as Snakemake report labels: run, status, parameters and metrics, as index.html shows them."""
    keep = {"run": r["label"], "status": r["status"]}
    for key, value in r.items():
        if key.startswith(("params.", "metrics.")):
            keep[key.split(".", 1)[1]] = index.shown(value)
    return keep


def outdated(sweep) -> bool:
    """Whether the summary files are missing or list other runs than the configured ones."""
    out = Path(sweep.output_dir)
    if not all((out / name).is_file() for name in FILES):
        return True
    try:
        listed = [(r["template"], r["label"]) for r in json.loads((out / "summary.json").read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError, KeyError):
        return True
    return listed != list(sweep.runs)


def extra_targets(sweep, check_summary: bool) -> list[str]:
    """Inputs of rule ``all`` beyond the targets: renderings that exist (so they are kept
    current) and, if ``check_summary`` finds the summary outdated, the refresh file."""
    renders = [html_path(Path(target)) for target in sweep.targets()]
    wanted = [str(path) for path in renders if path.exists()]
    if check_summary and outdated(sweep):
        wanted.append(str(Path(sweep.output_dir, REFRESH)))
    return wanted


def reported_files(sweep, captions: Path) -> list[tuple[str, str]]:
    """(path, caption) of the summary files that exist, for the Snakemake report."""
    found = [Path(sweep.output_dir, name) for name in ("index.html", "summary.csv")]
    return [(str(path), str(captions / f"{path.stem}.rst")) for path in found if path.is_file()]


def write_results(sweep) -> None:
    """Write summary.csv, summary.json and index.html; a failure is a warning, never an error."""
    out = Path(sweep.output_dir)
    try:
        columns, rows = table([row(run, sweep.output_dir) for run in sweep.runs.values()])
        out.mkdir(parents=True, exist_ok=True)
        write_atomically(out / "summary.csv", to_csv(columns, rows))
        write_atomically(out / "summary.json", json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        write_atomically(out / "index.html", index.page(columns, rows, out))
        (out / REFRESH).unlink(missing_ok=True)
    except Exception as err:  # a handler must not turn a finished sweep into a crash
        reason = err.strerror if isinstance(err, OSError) and err.strerror else f"{type(err).__name__}: {err}"
        print(f"nbsweep: could not write the summary in {out}: {reason}", file=sys.stderr)
        return
    counts = Counter(r["status"] for r in rows)
    tally = ", ".join(f"{counts[s]} {s}" for s in index.STATUSES if counts[s])
    print(f"nbsweep: {len(rows)} runs ({tally or 'none configured'}); summary in {out / 'index.html'}", file=sys.stderr)
