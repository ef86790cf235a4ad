"""Where a run's files live: target, failed copy, partial file, log and job file."""

from pathlib import Path

TARGET = "{output_dir}/{name}/{label}/{name}_{label}.ipynb"


def target(output_dir: str, name: str, label: str) -> Path:
    return Path(TARGET.format(output_dir=output_dir, name=name, label=label))


def failed_copy(target_path: Path) -> Path:
    """The executed notebook of a failed run, kept beside the (absent) target."""
    return target_path.with_suffix(".failed.ipynb")


def partial(target_path: Path) -> Path:
    """Where papermill writes while a run executes; moved into place only on success."""
    return target_path.with_name(f".{target_path.stem}.partial.ipynb")


def log(target_path: Path) -> Path:
    return target_path.with_suffix(".log")


def job_file(target_path: Path) -> Path:
    """The run's job description; its mtime changes only when the run's fingerprint does."""
    return target_path.with_name(".nbsweep-job.json")
