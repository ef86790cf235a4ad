"""The results table: one row per configured run, rebuilt after every Snakemake invocation.

``write_results(sweep)`` (called as every invocation ends, see ``nbsweep.smk.hooks``) writes summary.csv,
summary.json and index.html into the output folder. A row comes from the run's executed notebook
(the target, or the ``.failed.ipynb`` copy): nbsweep's and papermill's metadata, read from the end
of the file where nbformat writes it, and the values ``nbsweep.record`` left in cell outputs; or,
for a run that failed in this invocation without a notebook saying so, that failure
(``nbsweep.results.failures``). The values of the runs' secrets are masked (``***``) in every row.
"""

import csv
import io
import json
from pathlib import Path

from nbsweep import layout
from nbsweep.files import write_atomically
from nbsweep.masking import mask, mask_data, secret_values
from nbsweep.messages import say
from nbsweep.model.parameters import declared_defaults
from nbsweep.model.pipeline import UPSTREAM
from nbsweep.provenance.records import flatten, provenance_in
from nbsweep.provenance.state import matches, planned, run_state
from nbsweep.results import compare_page, failures, index
from nbsweep.results.executed import executed_defaults, mapping, read_result
from nbsweep.results.index import cell_text

HEAD = ("template", "label", "status", "stale")
TAIL = (
    "accepted",
    "default_params",
    "start_time",
    "duration_s",
    "error_name",
    "error_message",
    "error_cell_index",
    "error_cell_line",
    "target",
    "notebook",
    "html",
    "log",
    "previous",
    "config",
)
FILES = layout.RESULTS


# status's word -> ours (an accepted run is "ok"; its `accepted` column says when it was accepted)
STATES = {
    "up to date": "ok",
    "up to date (accepted)": "ok",
    "stale": "stale",
    "failed": "failed",
    "interrupted": "interrupted",
    "not run": "not run",
    "missing": "not run",
}
_template_defaults: dict[tuple[str, str], dict] = {}


def template_defaults(template) -> dict:
    """The declared defaults of a template as planned (read once per template code)."""
    key = (template.path, template.code_digest)
    if key not in _template_defaults:
        _template_defaults[key] = declared_defaults(template.nb)
    return _template_defaults[key]


def effective_parameters(run, made: dict, notebook: Path | None) -> tuple[dict, list[str]]:
    """(parameters, names filled in from the template's defaults) of what the run executed with:
    the parameters its notebook records (the configured ones if it has not run), over the defaults
    of the template it was made from."""
    own = made.get("parameters")
    own = own if isinstance(own, dict) else run.parameters
    same_template = notebook is None or made.get("template_code") in (None, run.template.code_digest)
    defaults = template_defaults(run.template) if same_template else executed_defaults(notebook)
    if run.after:  # what `upstream` received is the upstream runs' notebooks (see their rows)
        defaults = {name: value for name, value in defaults.items() if name != UPSTREAM}
    return {**defaults, **own}, [name for name in defaults if name not in own]


def secrets_of(runs) -> list[str]:
    """The values of the runs' secret variables, to mask wherever nbsweep copies text from a run."""
    return secret_values({variable for run in runs for variable in getattr(run, "secrets", {}).values()})


def row(run, output_dir: str, digests: dict[str, str] | None = None, runs: dict | None = None, secrets: list[str] | None = None) -> dict:
    """One run's row: state (as ``nbsweep status`` decides it, or as this invocation saw it fail:
    ``nbsweep.results.failures``), effective parameters, metrics, timing, error and file paths, with the
    values of ``secrets`` (default: the run's own) masked. ``digests``: input file hashes shared
    across rows; ``runs``: id -> run, to find failures upstream (``nbsweep.provenance.state``)."""
    found = recorded_row(run, output_dir, digests, runs)
    failure = failures.KNOWN.get((run.name, run.label))
    if failure and not (found["notebook"] and failures.recorded_since_start(Path(found["notebook"]))):
        found = known_failure_row(run, found, failure)
    return mask_data(found, secrets_of([run]) if secrets is None else secrets)


def known_failure_row(run, found: dict, failure: failures.Failure) -> dict:
    """The row of a run that failed (or could not run) in this invocation without a notebook saying
    so: its planned parameters and the failure; an older notebook still there is the previous one."""
    parameters, defaulted = effective_parameters(run, {}, None)
    target = Path(found["target"])
    previous = target if target.exists() else found["previous"]
    kept = {key: value for key, value in found.items() if not key.startswith(("params.", "metrics."))}
    return {
        **kept,
        **flatten(parameters, "params."),
        "status": failure.status,
        "stale": None,
        "accepted": None,
        "default_params": defaulted,
        "start_time": None,
        "duration_s": None,
        "error_name": failure.error_name,
        "error_message": failure.error_message,
        "error_cell_index": None,
        "error_cell_line": None,
        "notebook": None,
        "html": None,
        "previous": str(previous) if previous else None,
    }


def recorded_row(run, output_dir: str, digests: dict[str, str] | None, runs: dict | None) -> dict:
    """A run's row as its files on disk say (see ``row``)."""
    digests = {} if digests is None else digests
    state = run_state(run, output_dir, digests, runs).state
    status = STATES[state]
    target = layout.target(output_dir, run.name, run.label)
    notebook = {"ok": target, "stale": target, "failed": layout.RunFiles(target).failed}.get(status)
    metadata, metrics = read_result(notebook) if notebook else ({}, {})
    made, papermill = mapping(metadata, "nbsweep"), mapping(metadata, "papermill")
    parameters, defaulted = effective_parameters(run, made, notebook)
    error = mapping(made, "error")
    duration = papermill.get("duration")
    files = layout.RunFiles(target)
    html, log = files.html, files.log
    if notebook == files.failed:
        html = files.failed_html
    fresh_html = notebook is not None and html.exists()  # the runner replaces it with each notebook
    changed = not matches(provenance_in(made), planned(run, digests))
    return {
        "template": run.name,
        "label": run.label,
        "status": status,
        "stale": None if notebook is None else status == "stale" or (status == "failed" and changed),
        **flatten(parameters, "params."),
        **flatten(metrics, "metrics."),
        "accepted": made.get("accepted_at") if state == "up to date (accepted)" else None,  # when `nbsweep accept` re-stamped it
        "default_params": defaulted,
        "start_time": papermill.get("start_time"),
        "duration_s": round(duration, 3) if isinstance(duration, (int, float)) else None,
        "error_name": error.get("ename"),
        "error_message": error.get("evalue"),
        "error_cell_index": error.get("cell_index"),
        "error_cell_line": error.get("cell_line"),
        "target": str(target),
        "notebook": str(notebook) if notebook else None,
        "html": str(html) if fresh_html else None,
        "log": str(log) if log.exists() else None,
        "previous": str(files.previous) if status in ("failed", "interrupted") and files.previous.exists() else None,
    }


def rows(sweep) -> list[dict]:
    """The rows of every configured run, in config order."""
    digests: dict[str, str] = {}
    by_id = {run.id: run for run in sweep.runs.values()}
    secrets = secrets_of(sweep.runs.values())
    config = ", ".join(sweep.config_files)  # the config files the rows are of
    return [{**row(run, sweep.output_dir, digests, by_id, secrets), "config": config} for run in sweep.runs.values()]


def full_table(rows: list[dict]) -> tuple[list[str], list[dict]]:
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
            keep[key.split(".", 1)[1]] = index.display_text(value)
    return keep


def renderings(sweep) -> list[tuple[str, str, object]]:
    """(target, rendering, run) of every configured run (those a failed upstream blocks aside)."""
    runs = [run for key, run in sweep.runs.items() if key not in sweep.blocked]
    return [(target, str(layout.RunFiles(Path(target)).html), run) for target, run in zip(sweep.targets(), runs, strict=True)]


def unrendered(sweep) -> list[str]:
    """The executed notebooks of runs without a rendering (``nbsweep_renderings`` renders them)."""
    return [target for target, html, _ in renderings(sweep) if Path(target).exists() and not Path(html).exists()]


# The files of ``snakemake --report``, flagged with the Snakefile's ``report``: inputs of
# nbsweep_all that no rule outputs (the exit hook writes the summary, each run's job its
# rendering), so Snakemake takes them as source files and wants no provenance record of them.


def reported_summary(sweep, report, captions: Path) -> list:
    """index.html and summary.csv, when they exist, each with its caption."""
    found = [Path(sweep.output_dir, name) for name in ("index.html", "summary.csv")]
    return [report(str(path), caption=str(captions / f"{path.stem}.rst"), category="Summary") for path in found if path.is_file()]


def reported_renderings(sweep, report, captions: Path) -> list:
    """The runs' renderings that exist, by template, labelled (when the report is made) with the run's row."""
    return [
        report(
            html,
            caption=str(captions / "notebook.rst"),
            category="Notebooks",
            subcategory=run.name,
            labels=lambda _wildcards, run=run: labels(row(run, sweep.output_dir)),
        )
        for _, html, run in renderings(sweep)
        if Path(html).exists()
    ]


def write_results(sweep, announce: bool = True) -> None:
    """Write summary.csv, summary.json, index.html and each template's compare.html; a failure is a warning, never an error.

    ``announce``: print the closing line (or the warning); off for refreshes during a sweep."""
    out = Path(sweep.output_dir)
    try:
        columns, full_rows = full_table(rows(sweep))
        out.mkdir(parents=True, exist_ok=True)
        write_atomically(out / "summary.csv", to_csv(columns, full_rows))
        write_atomically(out / "summary.json", json.dumps(full_rows, indent=1, ensure_ascii=False) + "\n")
        write_atomically(out / "index.html", index.page(columns, full_rows, out))
    except Exception as err:  # noqa: BLE001 -- a finished sweep must not end in a crash over its summary
        reason = (
            err.strerror
            if isinstance(err, OSError) and err.strerror
            else mask(f"{type(err).__name__}: {err}", secrets_of(sweep.runs.values()))
        )
        if announce:
            say(f"nbsweep: could not write the summary in {out}: {reason}")
        return
    problems = compare_page.write_pages(out, full_rows, secrets_of(sweep.runs.values()))
    if announce:
        say(
            f"nbsweep: {len(full_rows)} run{'' if len(full_rows) == 1 else 's'} ({index.tally(full_rows) or 'none configured'}); "
            f"summary in {out / 'index.html'}"
        )
        for problem in problems:
            say(f"nbsweep: {problem}")
