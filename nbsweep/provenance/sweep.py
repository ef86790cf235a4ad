"""The sweep of one invocation: its planned runs, indexed by template name and label, and which
of them are current (their notebook records the provenance planned now).

The main process plans from the config (``Sweep.load``) and, with its first job file, writes the
invocation's *plan snapshot* (``plan.json`` beside the job files): what the rules need of every
run. A job's own Snakemake process on a cluster node (``--mode remote``) builds its Sweep from
that snapshot (``Sweep.from_snapshot``) instead of reading the config, the templates and the
inputs again, so its cost does not grow with the sweep.
"""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.files import write_atomically
from nbsweep.model.config import load_config, load_schema
from nbsweep.model.pipeline import upstream_ids
from nbsweep.model.plan import Planner, Run
from nbsweep.model.rule_names import RUN_RULE, own_rule
from nbsweep.provenance import state
from nbsweep.provenance.jobs import DRY_RUN_JOB_FILE, private_folder, write_dry_run_job_file, write_job_file

DEFAULT_CONFIG = Path("config/config.yaml")
SNAPSHOT_VERSION = 2


@dataclass(frozen=True)
class SnapshotRun:
    """A run as a job process's rules need it, read from the invocation's plan snapshot (its
    parameters and provenance are in its job file)."""

    name: str
    label: str
    notebook: str  # the template's path
    inputs: tuple[str, ...]
    threads: int
    resources: dict
    outputs: tuple[str, ...] = ()
    produced: tuple[tuple[str, str], ...] = ()
    after: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.name}/{self.label}"


class Sweep:
    """All runs of one invocation, indexed by template name and label."""

    def __init__(self, output_dir: str, runs: list[Run], groups: dict | None = None, resource_defaults: dict | None = None):
        self.output_dir = output_dir
        self.runs = {(run.name, run.label): run for run in runs}
        self.target_paths = {key: str(layout.target(output_dir, *key)) for key in self.runs}
        self.digests: dict[str, str] = {}  # input file -> SHA-256, computed once per invocation
        self._current: dict[tuple[str, str], bool] = {}
        self._found: dict[tuple[str, str], bool] = {}  # current before any restore (current_as_found)
        self._executes: dict[tuple[str, str], bool] = {}
        self._upstream: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.owner = False  # whether this invocation holds the folder (nbsweep.smk.workdir)
        self.invocation = ""  # this invocation's name, for its job files
        self.refused = False  # ended by nbsweep before executing anything
        self._dry_folder: Path | None = None
        self._snapshot_written = False
        self._written: set[tuple[str, str]] = set()  # runs whose job file this invocation wrote
        self.config_files: list[str] = []  # as given, for the results to name
        self.restores = None  # called for a run that is not current: whether it is (or would be) put back, from aside or a cache
        self.restored: list[str] = []  # ids of the runs whose kept-aside notebook this invocation put back
        self.cache = None  # the run cache's settings (nbsweep.cache.settings), from the config's `cache:` key
        self.caches = None  # the caches as this invocation uses them (nbsweep.cache.restore.Caches), set by the hooks
        self.aside: dict[tuple[str, str], str] = {}  # executing runs' notebooks to keep aside, by run: their fingerprint
        self.mlflow = None  # MLflow tracking settings (nbsweep.results.tracking), from the config's `mlflow:` key
        self.blocked: dict = {}  # runs left out of the DAG: their folder cannot be written, or they wait for one (nbsweep.smk.writable)
        self.groups = batch_groups(runs) if groups is None else groups
        self.resource_defaults = _resource_defaults(runs) if resource_defaults is None else resource_defaults

    @classmethod
    def load(cls, config_files: list[Path], schema_file: Path, overrides: list[str] = ()) -> "Sweep":
        """Plan from the config files, with Snakemake's ``--config KEY=VALUE`` entries on top."""
        files = [as_given(Path(path)) for path in config_files] or [DEFAULT_CONFIG]
        config = load_config(files, load_schema(schema_file), list(overrides))
        sweep = cls(config.output_dir, Planner(config).plan())
        sweep.mlflow = config.mlflow
        sweep.cache = config.cache
        sweep.config_files = [str(path) for path in files]
        return sweep

    def snapshot(self) -> dict:
        """What the rules need of every run, as JSON: templates, inputs and resources listed once."""
        templates, inputs, resources = Table(), Table(), Table()
        runs = [
            [run.label, templates.index(run.template.path, [run.name, run.template.path]), inputs.index(run.inputs, list(run.inputs)),
             run.threads, resources.index(id(run.resources), run.resources), self.groups[key],
             list(run.outputs), [list(pair) for pair in run.produced], [list(pair) for pair in run.after]]
            for key, run in self.runs.items()
        ]  # fmt: skip
        return {
            "version": SNAPSHOT_VERSION,
            "output_dir": self.output_dir,
            "resource_defaults": self.resource_defaults,
            "templates": templates.items,
            "inputs": inputs.items,
            "resources": resources.items,
            "runs": runs,
        }

    @classmethod
    def from_snapshot(cls, path: Path, only: set[tuple[str, str]] | None = None) -> "Sweep":
        """The sweep as the invocation's main process planned it, from its snapshot at ``path``;
        ``only``: keep just these (name, label) runs (a job's process needs no others).
        Raises ValueError (or OSError) when the file cannot be read as a snapshot."""
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"{path} is not a version {SNAPSHOT_VERSION} plan snapshot")
        templates, inputs, resources = doc["templates"], [tuple(i) for i in doc["inputs"]], doc["resources"]
        runs, groups = [], {}
        if only is not None:  # and the runs they are after: their notebooks are inputs of these
            only = set(only) | {
                tuple(run_id.split("/", 1)) for label, template, *_, after in doc["runs"] if (templates[template][0], label) in only for run_id, _ in after
            }  # fmt: skip
        for label, template, run_inputs, threads, run_resources, group, outputs, produced, after in doc["runs"]:
            name, notebook = templates[template]
            if only is not None and (name, label) not in only:
                continue
            pairs = (tuple(map(tuple, produced)), tuple(map(tuple, after)))
            runs.append(SnapshotRun(name, label, notebook, inputs[run_inputs], threads, resources[run_resources], tuple(outputs), *pairs))
            groups[(name, label)] = group
        return cls(doc["output_dir"], runs, groups, doc["resource_defaults"])

    def write_snapshot(self) -> Path:
        """Write this invocation's plan snapshot (once), for its jobs' processes."""
        path = layout.plan_snapshot(self.invocation)
        if not self._snapshot_written:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, json.dumps(self.snapshot(), ensure_ascii=False, separators=(",", ":")))
            self._snapshot_written = True
        return path

    def is_current(self, run: Run) -> bool:
        """Whether the run's target records exactly the provenance planned now, and its
        declared outputs are the files it wrote; if not, whether ``restores`` puts (or would put)
        such a notebook in place (kept aside, or from a cache)."""
        key = (run.name, run.label)
        if key not in self._current:
            current = self.current_as_found(run)
            if not current and self.restores is not None:
                current = self.restores(run)
            self._current[key] = current
        return self._current[key]

    def current_as_found(self, run: Run) -> bool:
        """``state.is_current`` of the run's target as this invocation found it (asked once)."""
        key = (run.name, run.label)
        if key not in self._found:
            self._found[key] = state.is_current(run, Path(self.target_paths[key]), self.digests)
        return self._found[key]

    def lookups(self) -> list[tuple[Run, str]]:
        """The runs a cache may be asked for whose planned fingerprint is known before planning
        reaches them, with that fingerprint: those not current that wait for no other run
        (``nbsweep.cache.restore.Caches`` reads their entries in a remote cache at once)."""
        return [
            (run, state.planned(run, self.digests).fingerprint)
            for run in self.runs.values()
            if not self.upstream_keys(run) and not self.current_as_found(run)
        ]

    def executes(self, run: Run, forced) -> bool:
        """Whether the run executes in this invocation: it is not current, ``forced(run)``, or
        a run it waits for executes (and may change what it consumes)."""
        stack = [(run.name, run.label)]
        while stack:
            key = stack[-1]
            if key in self._executes:
                stack.pop()
                continue
            ups = self.upstream_keys(self.runs[key])
            pending = [up for up in ups if up not in self._executes]
            if pending:
                stack += pending
                continue
            stack.pop()
            this = self.runs[key]
            self._executes[key] = any(self._executes[up] for up in ups) or forced(this) or not self.is_current(this)
        return self._executes[(run.name, run.label)]

    def why_executes(self, run: Run, forced) -> str:
        """Why a run that ``executes`` does, in one line (``state.execution_reason``)."""
        upstream = [f"{name}/{label}" for name, label in self.upstream_keys(run) if self._executes.get((name, label))]
        by_id = {each.id: each for each in self.runs.values()} if run.after or run.produced else {}
        here = state.run_state(run, self.output_dir, self.digests, by_id)
        return state.execution_reason(here, upstream, forced(run))

    def only_upstream_changes(self, run: Run) -> bool:
        """Whether all that may be stale about an executing run is what its upstream runs leave
        it: it has a good notebook and its declared outputs are the files it wrote. Then, if they
        leave the same content, it keeps its notebook (early cutoff, ``nbsweep.execution.run_io``)."""
        target = Path(self.target(run))
        if not (run.produced or run.after) or not target.exists():
            return False
        return not state.output_changes(run, target, self.digests)

    def upstream_keys(self, run: Run) -> list[tuple[str, str]]:
        """(name, label) of the runs this one waits for (``nbsweep.model.pipeline.upstream_ids``)."""
        key = (run.name, run.label)
        if key not in self._upstream:
            self._upstream[key] = [tuple(run_id.split("/", 1)) for run_id in upstream_ids(run)]
        return self._upstream[key]

    def rule_name(self, run) -> str:
        """The Snakemake rule of a run: nbsweep_run, or, for a run with declared outputs (which a
        rule's output patterns cannot express per run), a rule of its own."""
        return own_rule(run.name, run.label) if run.outputs else RUN_RULE

    def notebook_wildcard(self, name: str) -> str:
        """The ``notebook`` wildcard of nbsweep_run: a template name, except for the runs with a
        rule of their own (so Snakemake does not evaluate nbsweep_run for their targets too)."""
        own = "|".join(re.escape(f"{run.name}/{run.label}/") for run in self.producing_runs)
        return f"(?!{own}){name}" if own else name

    def own_rule_outputs(self, run) -> dict[str, str]:
        """The named outputs of a run's own rule: its notebook first (as for nbsweep_run), then
        its declared outputs."""
        return {"notebook": self.target(run), **{f"declared{i}": path for i, path in enumerate(run.outputs)}}

    @property
    def producing_runs(self) -> list:
        return [run for run in self.runs.values() if run.outputs]

    def job_file(self, run: Run, dry: bool, forced: bool = False) -> Path:
        """Write the run's job file for this invocation (once), dated later than the run's files
        (``jobs.date_beyond``). A dry-run executes nothing, so every stale run of it gets the same
        fresh file under the temp dir (its content unread), dated later than every run's files: a
        thousand runs cost one file and a stat per run, not a thousand files."""
        if dry:
            if self._dry_folder is None:
                self._dry_folder = private_folder()
                every_file = [path for other in self.runs.values() for path in self.files_of(other)]
                write_dry_run_job_file(self._dry_folder / DRY_RUN_JOB_FILE, later_than=every_file)
            return self._dry_folder / DRY_RUN_JOB_FILE
        self.write_snapshot()  # before any job file: a job that finds its job file finds the plan
        path = layout.job_file(self.invocation, run.name, run.label)
        if (run.name, run.label) not in self._written:
            may_cut_off = not forced and self.only_upstream_changes(run)
            cache = self.caches.job_targets(run) if self.caches else None
            write_job_file(path, run, state.planned(run, self.digests), may_cut_off, later_than=self.files_of(run), cache=cache)
            self._written.add((run.name, run.label))
        return path

    def files_of(self, run) -> list[str]:
        """The files a run's job writes that Snakemake dates: its notebook and declared outputs."""
        return [self.target(run), *run.outputs]

    def remove_job_files(self) -> None:
        """As the invocation ends: its job files are of no use to anyone."""
        if self._dry_folder:
            shutil.rmtree(self._dry_folder, ignore_errors=True)
        if self.owner and self.invocation:
            shutil.rmtree(layout.invocation_dir(self.invocation), ignore_errors=True)
            for folder in (layout.INVOCATIONS, layout.STATE):
                try:
                    folder.rmdir()  # only when no other invocation's folder is left
                except OSError:
                    break

    def configured_run(self, name: str, label: str) -> Run:
        try:
            return self.runs[(name, label)]
        except KeyError:
            raise SweepError(f"no run {name}/{label} is configured; check the target path against the config") from None

    def target(self, run: Run) -> str:
        return self.target_paths[(run.name, run.label)]

    def targets(self, name: str | None = None) -> list[str]:
        return [self.target(run) for key, run in self.runs.items() if name in (None, run.name) and key not in self.blocked]

    @property
    def template_names(self) -> list[str]:
        return sorted({run.name for run in self.runs.values()})

    @property
    def resource_names(self) -> list[str]:
        return sorted(self.resource_defaults)

    @property
    def shared_threads(self) -> int | None:
        """The ``threads`` every run has, if they all have the same (a constant costs Snakemake
        less per job than a function), else None."""
        values = {run.threads for run in self.runs.values()}
        return values.pop() if len(values) == 1 else None

    @property
    def shared_resources(self) -> dict:
        """The resources whose value is the same for every run, with that value."""
        shared = {}
        for name in self.resource_names:
            values = {repr(self.resource(name, key)) for key in self.runs}
            if len(values) == 1:
                shared[name] = self.resource(name, next(iter(self.runs)))
        return shared

    def resource(self, name: str, name_label: tuple[str, str]):
        """A run's value of a Snakemake resource; 0 or "" where the run does not set it."""
        return self.runs[name_label].resources.get(name, self.resource_defaults[name])


def as_given(path: Path) -> Path:
    """A config path as users wrote it: relative to the working directory when inside it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


class Table:
    """Values in first-seen order, each referred to by its index; ``key`` tells them apart
    (runs of one config entry share their inputs and resources objects)."""

    def __init__(self):
        self.items: list = []
        self._seen: dict = {}

    def index(self, key, value) -> int:
        if key not in self._seen:
            self._seen[key] = len(self.items)
            self.items.append(value)
        return self._seen[key]


def _resource_defaults(runs) -> dict[str, int | str]:
    """For each resource any run sets, the value for runs that don't: "" for text ones, else 0."""
    defaults: dict[str, int | str] = {}
    for run in runs:
        for name, value in run.resources.items():
            if isinstance(value, str) or name not in defaults:
                defaults[name] = "" if isinstance(value, str) else 0
    return defaults


def batch_groups(runs: list[Run]) -> dict[tuple[str, str], str | None]:
    """Snakemake group of each run: runs of a template in chunks of its ``batch_size``."""
    seen: dict[tuple[str, int], int] = {}
    groups = {}
    for run in runs:
        if not run.batch_size:
            groups[(run.name, run.label)] = None
            continue
        index = seen.get((run.name, run.batch_size), 0)
        seen[(run.name, run.batch_size)] = index + 1
        groups[(run.name, run.label)] = f"{run.name}-bs{run.batch_size}-{index // run.batch_size}"
    return groups
