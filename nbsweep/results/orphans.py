"""Outputs of runs no longer in the config: found in the output folder, removed on request."""

import shutil
from pathlib import Path

from nbsweep import layout
from nbsweep.results import compare_page


def own_files(folder: Path) -> list[Path]:
    """The files nbsweep writes in a run's output folder (named after the folder)."""
    name, label = folder.parent.name, folder.name
    files = layout.RunFiles(folder / f"{name}_{label}.ipynb")
    return [path for path in files.all() if path.is_file()]


def is_one_off(folder: Path) -> bool:
    """Whether the folder is a one-off run's (``nbsweep run``), which is never an orphan."""
    return layout.RunFiles(folder / f"{folder.parent.name}_{folder.name}.ipynb").one_off.is_file()


def orphans(output_dir: str, configured) -> list[Path]:
    """Run folders in the output folder with nbsweep files of runs not in ``configured`` ((name, label)
    pairs), other than one-off runs' folders."""
    out = Path(output_dir)
    folders = sorted(out.glob("*/*/")) if out.is_dir() else []
    return [f for f in folders if (f.parent.name, f.name) not in configured and own_files(f) and not is_one_off(f)]


def remove_orphan(folder: Path) -> bool:
    """Delete nbsweep's files of an orphaned run and the emptied folders; False if others remain."""
    for path in own_files(folder):
        path.unlink(missing_ok=True)
    shutil.rmtree(layout.RunFiles(folder / f"{folder.parent.name}_{folder.name}.ipynb").kept_outputs, ignore_errors=True)
    try:
        folder.rmdir()
    except OSError:
        return False
    template = folder.parent
    if not any(path.is_dir() and path.name != layout.COMPARE_IMAGES for path in template.iterdir()):
        compare_page.remove_page(template)  # the template's last run is gone
    try:
        template.rmdir()  # the template's folder, once its last run is gone
    except OSError:
        pass
    return True
