"""Job files: one small JSON per run whose mtime moves only when the run's fingerprint changes.

Snakemake compares mtimes. Each run's job file is an input of its notebook job, and is rewritten
at planning time only when its content differs; if the fingerprint (template code, kernel,
parameters, input contents) is unchanged the old mtime is restored, and if the existing target
was already made from the new fingerprint the job file is dated just before it. So staleness is
decided by content, independent of template saves, ``touch`` or Snakemake's ``.snakemake/``.
"""

import json
import os
from pathlib import Path

from . import layout
from .canonical import fingerprint
from .plan import Run, fingerprint_material


def job_document(run: Run, digests: dict[str, str]) -> dict:
    material = fingerprint_material(run, digests)
    return {
        "run": run.id,
        "notebook": run.template.path,
        "timeout": run.timeout,
        "fingerprint": fingerprint(material),
        **material,
    }


def recorded_fingerprint(notebook_path: Path) -> str | None:
    """The fingerprint an executed notebook was made from, or None."""
    try:
        with open(notebook_path, encoding="utf-8") as fh:
            return json.load(fh)["metadata"]["nbsweep"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sync_job_file(run: Run, output_dir: str, digests: dict[str, str]) -> Path:
    """Write the run's job file if needed; return its path."""
    target = layout.target(output_dir, run.name, run.label)
    path = layout.job_file(target)
    doc = job_document(run, digests)
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        old_text = path.read_text(encoding="utf-8")
        old_stat = path.stat()
    except (OSError, UnicodeDecodeError):
        old_text, old_stat = None, None
    if old_text == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
    if old_text is not None and _fingerprint_of(old_text) == doc["fingerprint"]:
        os.utime(path, ns=(old_stat.st_atime_ns, old_stat.st_mtime_ns))
    elif recorded_fingerprint(target) == doc["fingerprint"]:
        made = target.stat().st_mtime_ns
        os.utime(path, ns=(made - 1_000_000_000, made - 1_000_000_000))
    return path


def _fingerprint_of(text: str) -> str | None:
    try:
        return json.loads(text).get("fingerprint")
    except (ValueError, AttributeError):
        return None
