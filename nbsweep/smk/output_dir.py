"""The output folder must be nbsweep's own: never the project itself, home or ``/``, never a folder
holding the sweep's templates or config files, and never a folder whose results files
(index.html, summary.csv, summary.json) someone else wrote."""

import json
from pathlib import Path

from nbsweep.errors import SweepError

GENERATOR = '<meta name="generator" content="nbsweep">'
CSV_HEAD = "template,label,status,"


def written_by_nbsweep(path: Path) -> bool:
    """Whether a results file at ``path`` is one nbsweep wrote (by its content)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if path.suffix == ".html":
        return GENERATOR in head
    if path.suffix == ".csv":
        return head.startswith(CSV_HEAD)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(rows, list) and all(isinstance(r, dict) and {"template", "label", "status"} <= r.keys() for r in rows)


def check_output_dir_is_ours(output_dir: str, where: str, results: tuple[str, ...], sources: list[str]) -> None:
    """Refuse the project folder, the home folder and ``/``, a folder holding one of ``sources``
    (the sweep's templates and config files), and a folder holding results files that nbsweep did
    not write (they would be replaced)."""
    path = Path(output_dir)
    resolved = path.resolve()
    for name, forbidden in (
        ("the filesystem root", Path("/")),
        ("your home folder", Path.home()),
        ("the project folder itself", Path.cwd()),
    ):
        if resolved == forbidden.resolve():
            raise SweepError(
                f"{where}: output_dir {output_dir!r} is {name}; set output_dir to a folder of its own, e.g. 'papermill_outputs'"
            )
    inside = next((source for source in sources if resolved in Path(source).resolve().parents), None)
    if inside is not None:
        raise SweepError(
            f"{where}: output_dir {output_dir!r} holds {inside}, which the sweep reads; "
            "set output_dir to a folder of its own, e.g. 'papermill_outputs'"
        )
    foreign = [name for name in results if (path / name).exists() and not written_by_nbsweep(path / name)]
    if foreign:
        raise SweepError(
            f"{where}: output_dir {output_dir!r} holds {', '.join(foreign)}, which nbsweep did not write and would replace; "
            "set output_dir to a folder of its own, or move those files"
        )
