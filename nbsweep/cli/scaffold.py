"""``nbsweep init``: make a folder an nbsweep project without overwriting anything in it.

Writes a Snakefile that pulls in the packaged workflow, config/config.yaml with a run per
template found (its declared parameters as a commented example), the workflow profile with
nbsweep's defaults (and, on request, the cluster profiles), and .gitignore entries for what a
sweep writes.
"""

import os
import textwrap
from pathlib import Path

import nbformat
import yaml

from nbsweep.model.parameters import declared
from nbsweep.packaged import PROFILES, SCHEMA

SNAKEFILE = """\
# nbsweep project: `snakemake --cores 8` executes every stale run listed in config/config.yaml
# (`snakemake -n` lists them and why). nbsweep's workflow ships in the installed package;
# this file only pulls it in. Add your own rules below if you like.
import nbsweep


module nbsweep:
    snakefile:
        nbsweep.snakefile()
    config:
        config


use rule * from nbsweep
"""
IGNORED = ("papermill_outputs/", ".snakemake/")
SKIP_DIRS = {"papermill_outputs", ".snakemake", ".ipynb_checkpoints", "node_modules", "site-packages", "__pycache__"}
MAX_TEMPLATES = 50


def find_templates(root: Path) -> list[Path]:
    """``.ipynb`` files under ``root`` (relative), skipping outputs, checkpoints, virtualenvs and hidden folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not (Path(folder, d) / "pyvenv.cfg").exists())
        found += [Path(folder, name).relative_to(root) for name in sorted(files) if name.endswith(".ipynb")]
        if len(found) >= MAX_TEMPLATES:
            break
    return found[:MAX_TEMPLATES]


def yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_entry(root: Path, template: Path) -> str:
    """A config entry running ``template`` with its defaults, its declarations as comments."""
    lines = [f"  - notebook: {yaml_string(template.as_posix())}", "    label: default"]
    try:
        nb = nbformat.read(root / template, as_version=4)
        kernelspec = nb.metadata.get("kernelspec", {})
        language = nb.metadata.get("language_info", {}).get("name") or kernelspec.get("language") or "python"
        params = declared(nb, kernelspec.get("name"), language)
    except Exception as err:  # nbformat raises many types for broken files
        return "\n".join([f"  # {template}: not readable as a notebook ({type(err).__name__}); fix it or remove this entry", *lines])
    if params is None:
        lines.append(f"    # parameters: {{...}}  (nbsweep cannot read {language} parameters cells)")
    elif params:
        lines.append("    # parameters:  (declared in the template, with their defaults)")
        for p in params:
            kind = "" if p.type_name in ("None", "") else f"  # {p.type_name}"
            lines.append(f"    #   {p.name}: {p.default}{kind}")
    else:
        lines.append("    # (no cell tagged `parameters`: values are injected at the top)")
    return "\n".join(lines)


def run_keys() -> list[str]:
    """The keys a run entry may have, as the config schema lists them."""
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return list(schema["properties"]["runs"]["items"]["properties"])


def config_text(root: Path, templates: list[Path]) -> str:
    keys = textwrap.wrap(f"Keys of a run: {', '.join(run_keys())};", width=96)
    head = [
        "# nbsweep config: each entry under `runs` is one run of a template, or a grid of runs.",
        *(f"# {line}" for line in keys),
        "# `defaults:` sets most of them for every run (nbsweep's configuration reference explains each).",
        "# Example of a grid (one run per value):",
        "#   - notebook: notebooks/train.ipynb",
        '#     label: "lr{learning_rate}"',
        "#     grid: {learning_rate: [0.1, 0.01]}",
        "#     inputs: [data/train.csv]     # files whose content change reruns the run",
        "output_dir: papermill_outputs",
        "",
    ]
    if not templates:
        return "\n".join([*head, "runs: []  # no .ipynb templates found: add entries like the example above", ""])
    return "\n".join([*head, "runs:", *(run_entry(root, t) for t in templates), ""])


def init(root: Path, cluster_profiles: tuple[str, ...] = ()) -> list[str]:
    """Write the project files that are missing; one line per file written or skipped.

    ``cluster_profiles``: also copy these packaged profiles (``slurm``, ``cluster-generic``)."""
    report = []

    def write(relative: str, text: str) -> None:
        path = root / relative
        if path.exists():
            report.append(f"skipped {relative}: it exists (left unchanged)")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        report.append(f"wrote {relative}")

    write("Snakefile", SNAKEFILE)
    write("config/config.yaml", config_text(root, find_templates(root)))
    for profile in ("default", *cluster_profiles):
        for source in sorted(p for p in (PROFILES / profile).iterdir() if p.is_file()):
            write(f"profiles/{profile}/{source.name}", source.read_text(encoding="utf-8"))
            if os.access(source, os.X_OK):
                (root / "profiles" / profile / source.name).chmod(0o755)
    report.append(add_ignored(root / ".gitignore"))
    return report


def add_ignored(path: Path) -> str:
    """Append the output folders to .gitignore unless they are listed already."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    missing = [entry for entry in IGNORED if entry not in text.splitlines()]
    if not missing:
        return "skipped .gitignore: it lists the outputs already"
    prefix = "" if not text or text.endswith("\n") else "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(prefix + "# nbsweep outputs\n" + "".join(f"{entry}\n" for entry in missing))
    return f"{'added to' if text else 'wrote'} .gitignore: {' '.join(missing)}"
