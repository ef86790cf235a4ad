"""One-off runs (``nbsweep run``): a template executed once with given parameters, outside the config.

A one-off run is planned like a config entry (``notebook``, ``label``, ``parameters``) on top of
the project's config (its ``output_dir`` and ``defaults`` apply), and its entry is kept beside its
notebook as ``<name>_<label>.one-off.json``, a config file with that one run. That file is what
Snakemake is given with the project's config files, and what marks the folder as a one-off run's,
so that ``nbsweep status`` shows it and never takes it for the outputs of a removed config run.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

from nbsweep import layout
from nbsweep.errors import SweepError, quoted
from nbsweep.files import write_atomically
from nbsweep.model.config import load_config, load_schema, read_document, validate
from nbsweep.model.plan import Planner, Run, check_name, slug
from nbsweep.model.spec import RunSpec, SweepConfig
from nbsweep.provenance.state import MISSING, RunState, run_state

DEFAULT_LABEL = "default"  # the label of a one-off run given no parameters


@dataclass(frozen=True)
class OneOff:
    """A planned one-off run, the config files it is planned with, and its entry as a config file's content."""

    run: Run
    output_dir: str
    config_files: tuple[Path, ...]
    entry: dict

    @property
    def target(self) -> Path:
        return layout.target(self.output_dir, self.run.name, self.run.label)

    @property
    def marker(self) -> Path:
        return layout.RunFiles(self.target).one_off


def default_label(parameters: dict) -> str:
    """``name1value1_name2value2`` as a grid's default label pattern makes it, made path-safe."""
    if not parameters:
        return DEFAULT_LABEL
    return slug("_".join(f"{name}{value}" for name, value in parameters.items()))


def plan(
    config_files: tuple[Path, ...], schema_file: Path, template: str, parameters: dict, label: str | None, settings: dict | None = None
) -> OneOff:
    """Plan the one-off run of ``template`` with ``parameters`` (label: given, else ``default_label``)
    and ``settings`` (config entry keys such as ``kernel``) on the project's config (``config_files``: none in a project without one); a SweepError for
    bad input, or when a config run has its output folder or its template's name."""
    schema = load_schema(schema_file)
    config = load_config(list(config_files), schema)
    where = f"nbsweep run {template}"
    if label is not None:
        check_name(label, "label", where)
    entry = {"notebook": template, "label": label or default_label(parameters), "parameters": parameters, **(settings or {})}
    if label is None:  # made from the parameters: the user did not write it
        try:
            check_name(entry["label"], "label made from the parameters", where)
        except SweepError as err:
            raise SweepError(f"{err}, or name the run with --label") from None
    run = plan_entry(config, schema, {"runs": [entry]}, where, f"{where} (label {quoted(entry['label'])})")
    for other in Planner(config).plan():
        if other.id == run.id:
            raise SweepError(
                f"{where}: run {run.id} is in the config ({other.origin.where()}) and would be replaced; "
                "give another --label, or run the config's run with snakemake"
            )
        if other.name == run.name and other.template.path != run.template.path:
            raise SweepError(
                f"{where}: the config's template {other.template.path} has the same name {run.name!r}, so their outputs would collide; rename one of them"
            )
    return OneOff(run, config.output_dir, tuple(config_files), {"runs": [entry]})


def plan_entry(config: SweepConfig, schema: dict, doc, source: str, where: str) -> Run:
    """The run of a one-off config document (one entry, no grid), planned with the config's
    settings; errors name ``where`` instead of the document's ``source``."""
    entries = doc.get("runs") if isinstance(doc, dict) else None
    spec = RunSpec(source, 1, entries[0]) if isinstance(entries, list) and entries and isinstance(entries[0], dict) else None
    try:
        validate(doc, source, schema)
        if spec is None or len(entries) != 1 or spec.spec.get("grid"):
            raise SweepError(f"{source} must hold exactly one run without a grid")
        return Planner(replace(config, runs=[spec])).plan()[0]
    except SweepError as err:
        raise SweepError(str(err).replace(spec.where() if spec else source, where)) from None


def write_marker(one_off: OneOff) -> None:
    """Write the run's entry beside its notebook (unchanged content is not rewritten)."""
    text = json.dumps(one_off.entry, indent=1, ensure_ascii=False) + "\n"
    marker = one_off.marker
    try:
        if marker.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(marker, text)


def drop_unused_marker(one_off: OneOff) -> None:
    """Remove the entry and the folders made for it when the run left no files (it was refused)."""
    files = layout.RunFiles(one_off.target)
    if any(path.exists() for path in files.all()):
        return
    one_off.marker.unlink(missing_ok=True)
    for folder in (one_off.target.parent, one_off.target.parent.parent):
        try:
            folder.rmdir()
        except OSError:
            return


def markers(output_dir: str) -> list[Path]:
    """The one-off runs' entries in the output folder, one per run folder."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    return sorted(
        path
        for path in out.glob("*/*/*.one-off.json")
        if path == layout.RunFiles.of(output_dir, path.parent.parent.name, path.parent.name).one_off
    )


def states(config_files: tuple[Path, ...], schema_file: Path, configured) -> list[RunState]:
    """The state of each one-off run in the output folder whose (name, label) is not in ``configured``;
    one whose entry cannot be planned any more (its template is gone) is missing, with the reason."""
    schema = load_schema(schema_file)
    config = load_config(list(config_files), schema)
    found = []
    digests: dict[str, str | None] = {}
    for marker in markers(config.output_dir):
        key = (marker.parent.parent.name, marker.parent.name)
        if key in configured:
            continue
        run_id = "/".join(key)
        try:
            run = plan_entry(config, schema, read_document(marker), str(marker), str(marker))
        except SweepError as err:
            found.append(RunState(run_id, MISSING, f"cannot be planned: {err}"))
            continue
        if (run.name, run.label) != key:
            found.append(RunState(run_id, MISSING, f"{marker} describes run {run.id}, not this folder's; run it again with nbsweep run"))
            continue
        found.append(run_state(run, config.output_dir, digests))
    return found
