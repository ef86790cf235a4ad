"""The sweep of one invocation: its planned runs, indexed by template name and label, and which
of them are current (their notebook records the provenance planned now)."""

import shutil
from pathlib import Path

from . import layout, provenance
from .config import load_config, load_schema
from .errors import SweepError
from .jobs import private_folder, write_job_file
from .plan import Planner, Run

DEFAULT_CONFIG = Path("config/config.yaml")


class Sweep:
    """All runs of one invocation, indexed by template name and label."""

    def __init__(self, output_dir: str, runs: list[Run]):
        self.output_dir = output_dir
        self.runs = {(run.name, run.label): run for run in runs}
        self.target_paths = {key: str(layout.target(output_dir, *key)) for key in self.runs}
        self.digests: dict[str, str] = {}  # input file -> SHA-256, computed once per invocation
        self._current: dict[tuple[str, str], bool] = {}
        self.owner = False  # whether this invocation holds the folder (nbsweep.workdir)
        self.invocation = ""  # this invocation's name, for its job files
        self._dry_folder: Path | None = None
        self.groups = batch_groups(runs)
        self.resource_defaults = resource_defaults(runs)

    @classmethod
    def load(cls, config_files: list[Path], schema_file: Path) -> "Sweep":
        files = [shown(Path(path)) for path in config_files] or [DEFAULT_CONFIG]
        config = load_config(files, load_schema(schema_file))
        return cls(config.output_dir, Planner(config).plan())

    def is_current(self, run: Run) -> bool:
        """Whether the run's target records exactly the provenance planned now."""
        key = (run.name, run.label)
        if key not in self._current:
            made = provenance.recorded(Path(self.target_paths[key]))
            self._current[key] = made is not None and made.fingerprint == provenance.planned(run, self.digests).fingerprint
        return self._current[key]

    def job_file(self, run: Run, dry: bool) -> Path:
        """Write the run's job file for this invocation (a dry-run's under the temp dir)."""
        if dry:
            self._dry_folder = self._dry_folder or private_folder()
            path = self._dry_folder / run.name / f"{run.label}.json"
        else:
            path = layout.job_file(self.invocation, run.name, run.label)
        return write_job_file(path, run, self.digests)

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

    def run(self, name: str, label: str) -> Run:
        try:
            return self.runs[(name, label)]
        except KeyError:
            raise SweepError(f"no run {name}/{label} is configured; check the target path against the config") from None

    def target(self, run: Run) -> str:
        return self.target_paths[(run.name, run.label)]

    def targets(self, name: str | None = None) -> list[str]:
        return [self.target(run) for run in self.runs.values() if name in (None, run.name)]

    @property
    def template_names(self) -> list[str]:
        return sorted({run.name for run in self.runs.values()})

    @property
    def resource_names(self) -> list[str]:
        return sorted(self.resource_defaults)

    def resource(self, name: str, name_label: tuple[str, str]):
        """A run's value of a Snakemake resource; 0 or "" where the run does not set it."""
        return self.runs[name_label].resources.get(name, self.resource_defaults[name])


def shown(path: Path) -> Path:
    """A config path as users wrote it: relative to the working directory when inside it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def resource_defaults(runs: list[Run]) -> dict[str, int | str]:
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
