"""MLflow tracking (the ``nbsweep[mlflow]`` extra): every execution of a run becomes one MLflow run.

Turned on by the config's top-level ``mlflow:`` key (``tracking_uri``, ``experiment``; both
optional). At planning, ``notebook_states`` notes each run's executed notebooks (target and failed copy)
by path, mtime and size; as the invocation ends, ``log_executed`` logs the runs whose notebook is
new since then, from the Snakemake main process with one ``import mlflow``. A no-op invocation
logs nothing, and a re-executed run adds a new MLflow run beside the old ones. The values of the
sweep's secrets are masked in what is logged, artifacts included. Nothing here may fail the sweep:
a tracking store that cannot be reached is one warning line.
"""

import html
import json
import logging
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path

from nbsweep import layout
from nbsweep.masking import mask, mask_data
from nbsweep.messages import say
from nbsweep.model.mlflow_settings import Settings
from nbsweep.provenance.records import read_record
from nbsweep.results import summary

# A tracking server that is down costs seconds at the end of a sweep, not MLflow's minutes of retries.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
BATCH = 100  # MLflow's limit on params per log_batch call


def notebook_identity(path: Path) -> tuple[int, int, int] | None:
    """(mtime, inode, size) of a notebook. Every execution writes a new file (a new inode), while
    a run kept by early cutoff gets its old file back (the same inode; Snakemake touches it)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_ino, stat.st_size


def notebooks(run, output_dir: str) -> list[Path]:
    """Where a run's executed notebook can be: its target and its failed copy."""
    files = layout.RunFiles.of(output_dir, run.name, run.label)
    return [files.target, files.failed]


def notebook_states(sweep) -> dict[Path, tuple[int, int, int] | None]:
    """The identity of every run's executed notebooks, before anything executes."""
    return {path: notebook_identity(path) for run in sweep.runs.values() for path in notebooks(run, sweep.output_dir)}


def executed(sweep, before: dict) -> list[tuple[object, Path]]:
    """(run, notebook) of the runs that executed since ``before``: their newest changed notebook."""
    found = []
    for run in sweep.runs.values():
        changed = [
            (now, path)
            for path in notebooks(run, sweep.output_dir)
            if (now := notebook_identity(path)) and now[1:] != (before.get(path) or ())[1:]
        ]
        if changed:
            found.append((run, max(changed)[1]))
    return found


def param_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:MAX_PARAM_LENGTH]


def is_metric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def millis(timestamp: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def logged_run(run, notebook: Path, output_dir: str, digests: dict, secrets: list[str] = (), restored: bool = False) -> dict:
    """What one execution logs: tags, params, metrics, artifacts, status and times; the values of
    ``secrets`` masked in its text (the artifacts are masked as they are logged: ``masked_copy``).
    A run ``restored`` from the run cache is tagged so, with the execution it is (``nbsweep.execution``,
    as its original execution's MLflow run is)."""
    row = summary.row(run, output_dir, digests, secrets=list(secrets))
    made = read_record(notebook)
    ok = notebook == layout.target(output_dir, run.name, run.label)
    name = f"{run.name}/{run.label}"
    tags = {"nbsweep.run": name, "nbsweep.template": run.name, "nbsweep.label": run.label, "mlflow.runName": name}
    if made.get("fingerprint"):
        tags["nbsweep.fingerprint"] = made["fingerprint"]
    if made.get("execution"):
        tags["nbsweep.execution"] = made["execution"]
    if restored:
        tags["nbsweep.restored_from_cache"] = "true"
    if not ok and row["error_name"]:
        tags["nbsweep.error"] = f"{row['error_name']}: {row['error_message']}"[:MAX_PARAM_LENGTH]
    start = millis(row["start_time"])
    return {
        "tags": tags,
        "params": {key.removeprefix("params."): param_value(v) for key, v in row.items() if key.startswith("params.")},
        "metrics": {key.removeprefix("metrics."): float(v) for key, v in row.items() if key.startswith("metrics.") and is_metric(v)},
        "artifacts": [notebook] + ([Path(row["html"])] if ok and row["html"] else []),
        "status": "FINISHED" if ok else "FAILED",
        "start": start,
        "end": start + int(row["duration_s"] * 1000) if start is not None and row["duration_s"] is not None else None,
    }


def masked_copy(path: Path, folder: Path, secrets: list[str]) -> Path:
    """``path`` itself, or, where it holds a secret's value, a copy of the same name in ``folder``
    with the values masked (in a notebook's JSON strings; in other text as written and HTML-escaped)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if not secrets or not any(value in text or html.escape(value) in text or json.dumps(value)[1:-1] in text for value in secrets):
        return path
    if path.suffix == ".ipynb":
        masked = json.dumps(mask_data(json.loads(text), secrets), ensure_ascii=False, indent=1)
    else:
        masked = mask(mask(text, secrets), [html.escape(value) for value in secrets])
    copy = folder / path.name
    copy.write_text(masked, encoding="utf-8")
    return copy


def log_executed(sweep, tracking: Settings | None, before: dict | None) -> None:
    """Log the runs executed since ``before`` (see the module docstring); never raises."""
    runs = executed(sweep, before) if tracking and before is not None else []
    if not runs:
        return
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        warn(
            f"the config asks for MLflow tracking but mlflow is not installed; install nbsweep[mlflow] (pip install 'nbsweep[mlflow]') to log the {len(runs)} runs executed"
        )
        return
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its "creating tables" notes: one line per run is ours
    logged = 0
    secrets = summary_secrets(sweep)
    try:
        client = MlflowClient(tracking_uri=tracking.tracking_uri)
        experiment = client.get_experiment_by_name(tracking.experiment)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(tracking.experiment)
        digests: dict[str, str] = {}
        restored = set(sweep.caches.restored) if sweep.caches else set()
        for run, notebook in runs:
            item = logged_run(run, notebook, sweep.output_dir, digests, secrets, run.id in restored)
            created = client.create_run(experiment_id, start_time=item["start"], tags=item["tags"], run_name=item["tags"]["mlflow.runName"])
            run_id = created.info.run_id
            stamp = item["end"] or item["start"] or 0
            metrics = [Metric(key, value, stamp, 0) for key, value in item["metrics"].items()]
            params = [Param(key, value) for key, value in item["params"].items()]
            for at in range(0, max(len(metrics), len(params)), BATCH):  # MLflow takes at most 100 params a call
                client.log_batch(run_id, metrics=metrics[at : at + BATCH], params=params[at : at + BATCH])
            with tempfile.TemporaryDirectory(prefix="nbsweep-mlflow-") as folder:
                for artifact in item["artifacts"]:
                    client.log_artifact(run_id, str(masked_copy(artifact, Path(folder), secrets)))
            client.set_terminated(run_id, status=item["status"], end_time=item["end"])
            logged += 1
    except Exception as err:  # noqa: BLE001 -- tracking must never fail a sweep
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        warn(mask(f"could not log to MLflow at {tracking.tracking_uri} ({logged} of {len(runs)} runs logged): {reason}", secrets))


def summary_secrets(sweep) -> list[str]:
    """The values of the sweep's secrets (``summary.secrets_of``)."""
    return summary.secrets_of(sweep.runs.values())


def warn(text: str) -> None:
    say(f"nbsweep: {text}")
