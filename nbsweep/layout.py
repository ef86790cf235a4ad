"""Where a run's files live, and where an invocation keeps its plan.

In the output folder: the results files (``RESULTS``) and a folder per template. Per run
(``<output_dir>/<name>/<label>/``): the target notebook, the failed copy, the hidden partial file
papermill writes into, the log, the HTML rendering and its log, and the previous good notebook
(with its log) kept while a rerun of a good run has failed or was interrupted (then marked so).
In ``.snakemake/nbsweep/invocations/<id>/``: the job files of one invocation.
"""

from dataclasses import dataclass
from pathlib import Path

TARGET = "{output_dir}/{name}/{label}/{name}_{label}.ipynb"
# What nbsweep writes at the top of the output folder, beside the templates' folders (nbsweep.results.summary).
RESULTS = ("summary.csv", "summary.json", "index.html")
# A template's runs side by side, in its folder (nbsweep.results.compare_page), with its images.
COMPARE_PAGE, COMPARE_IMAGES = "compare.html", "compare.images"
ONE_OFF_SUFFIX = ".one-off.json"  # a one-off run's entry, beside its notebook: a config file nbsweep writes
STATE = Path(".snakemake") / "nbsweep"
INVOCATIONS = STATE / "invocations"
CACHE_STATS = Path(".snakemake") / "nbsweep-cache.json"  # what the last invocation that executed found in the run caches


def results_file_named(name: str) -> str | None:
    """The results file a template's folder ``<output_dir>/<name>/`` would collide with (names
    compared case-insensitively, as macOS and Windows file systems do), or None."""
    return next((result for result in RESULTS if result.casefold() == name.casefold()), None)


def target(output_dir: str, name: str, label: str) -> Path:
    return Path(TARGET.format(output_dir=output_dir, name=name, label=label))


@dataclass(frozen=True)
class RunFiles:
    """Every file nbsweep writes for one run, named after its target."""

    target: Path

    @classmethod
    def of(cls, output_dir: str, name: str, label: str) -> "RunFiles":
        return cls(target(output_dir, name, label))

    @property
    def failed(self) -> Path:
        """The executed notebook of a failed run, kept beside the (absent) target."""
        return self.target.with_suffix(".failed.ipynb")

    @property
    def partial(self) -> Path:
        """Where papermill writes while a run executes; moved into place only on success."""
        return self.target.with_name(f".{self.target.stem}.partial.ipynb")

    @property
    def failed_html(self) -> Path:
        return self.target.with_suffix(".failed.html")

    @property
    def log(self) -> Path:
        return self.target.with_suffix(".log")

    @property
    def html(self) -> Path:
        return self.target.with_suffix(".html")

    @property
    def render_log(self) -> Path:
        return self.target.with_suffix(".render.log")

    @property
    def good(self) -> Path:
        """A hidden hard link to the latest good notebook: it survives Snakemake deleting the
        target when a rerun starts."""
        return self.target.with_name(f".{self.target.stem}.good.ipynb")

    @property
    def good_log(self) -> Path:
        return self.target.with_name(f".{self.target.stem}.good.log")

    @property
    def previous(self) -> Path:
        """The last good notebook, shown while the run's latest execution has failed."""
        return self.target.with_suffix(".previous.ipynb")

    @property
    def previous_log(self) -> Path:
        return self.target.with_suffix(".previous.log")

    @property
    def interrupted(self) -> Path:
        """A hidden marker: the run's latest execution was interrupted (removed at its next outcome)."""
        return self.target.with_name(f".{self.target.stem}.interrupted")

    @property
    def previous_html(self) -> Path:
        """The rendering of a notebook kept aside (``nbsweep.provenance.kept_aside``)."""
        return self.target.with_suffix(".previous.html")

    @property
    def kept_outputs(self) -> Path:
        """A hidden folder of links to the declared outputs the latest good run wrote, named by
        content (``nbsweep.execution.run_io``)."""
        return self.target.with_name(f".{self.target.stem}.outputs")

    @property
    def one_off(self) -> Path:
        """The entry of a one-off run (``nbsweep run``): it marks the folder as that run's."""
        return self.target.with_suffix(ONE_OFF_SUFFIX)

    def all(self) -> list[Path]:
        return [
            self.target, self.failed, self.failed_html, self.partial, self.log, self.html, self.render_log,
            self.good, self.good_log, self.previous, self.previous_log, self.previous_html, self.interrupted,
        ]  # fmt: skip


def invocation_dir(invocation: str) -> Path:
    return INVOCATIONS / invocation


def job_file(invocation: str, name: str, label: str) -> Path:
    """The job file of one run in one invocation: what that invocation planned for it.

    In a folder of its own: Snakemake caches the listing of a folder once it has looked into
    it while building the DAG, so a file written later into an already listed folder would
    seem missing."""
    return invocation_dir(invocation) / "jobs" / name / label / "job.json"


def jobs_folder_of(job_file_path: Path) -> Path | None:
    """The folder of all job files of the invocation that wrote this one (None if it is not one)."""
    folder = job_file_path.parent.parent.parent
    return folder if job_file_path.name == "job.json" and folder.name == "jobs" else None


def count_job_files(jobs_folder: Path) -> int:
    """How many runs an invocation executes: the job files in its jobs folder."""
    return sum(1 for name in jobs_folder.iterdir() for label in name.iterdir() if (label / "job.json").is_file())


def job_file_of(target_path: Path, invocation: str) -> Path:
    """The job file of the run whose target is ``target_path`` (``<out>/<name>/<label>/...``)."""
    return job_file(invocation, target_path.parent.parent.name, target_path.parent.name)


def plan_snapshot(invocation: str) -> Path:
    """What the invocation's main process planned, for its jobs' processes on cluster nodes."""
    return invocation_dir(invocation) / "plan.json"
