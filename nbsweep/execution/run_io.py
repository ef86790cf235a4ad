"""A pipeline run's files at execution time: what it consumed, what it must leave, early cutoff.

When a run starts, it reads its template once and hashes its declared inputs (``read_source``):
that notebook is what it executes, and those digests, taken as it starts (the files other runs
produce for it are final then: Snakemake started it after their producers), are what it records,
with which execution of each run in its ``after`` it receives (``settle``). An input that changes
before the run ends (``InputsRead.changed``) is recorded as ``CHANGED_WHILE_READ``, so the run
stays stale. If its provenance is the one its last good notebook records, the run does not execute again (*early cutoff*): the notebook and the declared outputs it wrote are
put back from the hidden links kept when it succeeded (``cut_off``). A run that executes must
leave every declared output (``written_outputs``); their hashes go into its notebook's record,
and a failed run's outputs are removed, so no consumer takes them for valid.
"""

import logging
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nbformat

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.file_digests import file_digest, file_digest_and_stat, stat_key
from nbsweep.model.formats import notebook_language
from nbsweep.model.parameters import known_defaults
from nbsweep.model.templates import code_digest, read_notebook
from nbsweep.provenance.records import CHANGED_WHILE_READ, Provenance, execution_of, read_record, recorded
from nbsweep.provenance.state import digest_if_present, matches


class MissingOutputError(Exception):
    """A run finished without writing a file it declares in ``outputs``."""

    ename = "MissingOutput"

    def __init__(self, run_id: str, paths: list[str]):
        self.evalue = (
            f"run {run_id} finished but did not write its declared output {', '.join(paths)}; "
            "write it in the notebook or remove it from 'outputs'"
        )
        super().__init__(self.evalue)


def settle(job: dict) -> None:
    """Fill in which execution of each run in its ``after`` this one receives."""
    job["upstream"] = {run_id: execution_of(Path(target)) for run_id, target in job.get("after", [])}


class InputsRead:
    """A run's declared inputs as it starts reading them: each one's digest (None: missing) and
    status, to tell when it ends whether one changed meanwhile."""

    def __init__(self, paths):
        self.digests: dict[str, str | None] = {}
        self.stats: dict[str, tuple[int, int, int] | None] = {}
        for path in paths:
            try:
                self.digests[path], self.stats[path] = file_digest_and_stat(path)
            except SweepError:
                if os.path.lexists(path):
                    raise
                self.digests[path] = self.stats[path] = None

    def changed(self) -> list[str]:
        """The inputs whose content is no longer what the run started with: a stat first, a hash
        only for those whose size, mtime or inode moved."""
        found = []
        for path, before in self.stats.items():
            try:
                now = stat_key(os.stat(path))
            except OSError:
                now = None
            if now == before:
                continue
            try:
                same = now is not None and file_digest(path) == self.digests[path]
            except SweepError:  # now a FIFO, a device, unreadable
                same = False
            if not same:
                found.append(path)
        return found

    def recorded(self, changed: list[str]) -> dict[str, str | None]:
        """What the run records it read: the digests it started with, ``CHANGED_WHILE_READ`` for ``changed``."""
        return {path: CHANGED_WHILE_READ if path in changed else sha for path, sha in self.digests.items()}


@dataclass(frozen=True)
class RunSource:
    """What a run executes, read once as it starts: its template (hashed from that same read) and its inputs."""

    notebook: nbformat.NotebookNode
    code: str
    inputs: InputsRead

    @cached_property
    def defaults(self) -> dict:
        """The template's known defaults (part of the run's effective parameters)."""
        return known_defaults(self.notebook, notebook_language(self.notebook))


def read_source(job: dict) -> RunSource:
    """Read the run's template once and hash its declared inputs, now. Raises SweepError (and the
    template readers' errors) when one cannot be used."""
    notebook = read_notebook(job["notebook"])  # a text notebook is converted in memory
    return RunSource(notebook, code_digest(notebook), InputsRead(job["inputs"]))


def upstream_parameter(job: dict) -> list[dict]:
    """The ``upstream`` parameter: per run named in ``after``, its id, executed notebook,
    effective parameters and recorded metrics."""
    from nbsweep.results.executed import executed_defaults, read_result

    found = []
    for run_id, target in job.get("after", []):
        metadata, metrics = read_result(Path(target))
        made = metadata.get("nbsweep", {}) if isinstance(metadata.get("nbsweep"), dict) else {}
        parameters = {**executed_defaults(Path(target)), **(made.get("parameters") or {})}
        parameters.pop("upstream", None)
        found.append({"run": run_id, "notebook": target, "parameters": parameters, "metrics": metrics})
    return found


def cut_off(job: dict, files: layout.RunFiles, source: RunSource) -> bool:
    """Put the last good notebook and its outputs back when the run would be made from exactly
    what they were made from (its upstream runs re-executed but left the same content)."""
    if not job.get("may_cut_off") or not files.good.exists():
        return False
    made = recorded(files.good)
    now = Provenance.from_dict({**job, "template_code": source.code, "inputs": source.inputs.digests, "defaults": source.defaults})
    if now is None or not matches(made, now):
        return False
    written = read_record(files.good).get("outputs") or {}
    if set(written) != set(job.get("outputs", [])):
        return False
    kept = {path: files.kept_outputs / sha for path, sha in written.items()}
    if not all(digest_if_present(link) == written[path] for path, link in kept.items()):
        return False
    try:
        for path, link in [*kept.items(), (str(files.target), files.good)]:  # the notebook last
            put_back(link, Path(path))
        if files.good_log.exists():
            shutil.copy2(files.good_log, files.log)
    except OSError:  # e.g. a full disk: execute the run instead (it replaces whatever was put back)
        files.target.unlink(missing_ok=True)
        return False
    return True


def put_back(link: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    try:
        os.link(link, path)
    except OSError:  # another filesystem, or none with hard links
        shutil.copy2(link, path)


def written_outputs(job: dict) -> dict[str, str]:
    """SHA-256 of every declared output, which must all exist now."""
    missing = [path for path in job.get("outputs", []) if not os.path.isfile(path)]
    if missing:
        raise MissingOutputError(job["run"], missing)
    return {path: file_digest(path) for path in job.get("outputs", [])}


def keep_outputs(files: layout.RunFiles, outputs: dict[str, str]) -> None:
    """Hidden links to the outputs a good run wrote (by content), for an early cutoff later."""
    shutil.rmtree(files.kept_outputs, ignore_errors=True)
    if not outputs:
        return
    try:
        files.kept_outputs.mkdir()
        for path, sha in outputs.items():
            if not (files.kept_outputs / sha).exists():
                try:
                    os.link(path, files.kept_outputs / sha)
                except OSError:
                    shutil.copy2(path, files.kept_outputs / sha)
    except OSError:  # e.g. a full disk: the run is good; a later cutoff just re-executes it
        shutil.rmtree(files.kept_outputs, ignore_errors=True)
        logging.getLogger("nbsweep").warning("could not keep links to the outputs of %s", files.target, exc_info=True)


def remove_outputs(job: dict) -> None:
    """A failed run's declared outputs are not left for consumers as if they were valid."""
    for path in job.get("outputs", []):
        Path(path).unlink(missing_ok=True)
