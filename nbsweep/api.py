"""nbsweep's Python API: plan a sweep, ask its runs' states, accept notebooks, read its results — as data.

Every call takes the config files as ``snakemake --configfile`` would (default:
``config/config.yaml``), relative to the current folder, and raises ``nbsweep.errors.SweepError``
(one sentence) for bad input. The ``nbsweep`` command only formats what these return::

    from nbsweep import api

    for state in api.status().states:
        print(state.run, state.state, [(c.what, c.name, c.old, c.new) for c in state.changes])
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nbsweep.packaged import SCHEMA
from nbsweep.provenance import accept as acceptance
from nbsweep.provenance.state import RunState, run_state
from nbsweep.provenance.sweep import Sweep
from nbsweep.results import orphans, summary
from nbsweep.smk import workdir

__all__ = ["Status", "accept", "load", "results", "states", "status"]


def load(config_files: Iterable[str | Path] = ()) -> Sweep:
    """The sweep the config files plan: ``sweep.runs`` maps (template, label) to each planned run."""
    return Sweep.load([Path(path) for path in config_files], SCHEMA)


def states(sweep: Sweep) -> list[RunState]:
    """Each configured run's state, in config order (``nbsweep.provenance.state``)."""
    digests: dict[str, str | None] = {}
    by_id = {run.id: run for run in sweep.runs.values()}
    return [run_state(run, sweep.output_dir, digests, by_id) for run in sweep.runs.values()]


@dataclass
class Status:
    """The runs' states and the output folders of runs no longer in the config (``orphans``);
    with ``remove_orphans``, which were ``removed`` and which ``kept`` (they hold files nbsweep did not write)."""

    states: list[RunState]
    orphans: list[Path]
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def status(config_files: Iterable[str | Path] = (), remove_orphans: bool = False) -> Status:
    """What ``nbsweep status`` reports. ``remove_orphans`` refuses (SweepError) while another
    invocation owns the project or output folder."""
    sweep = load(config_files)
    found = orphans.orphans(sweep.output_dir, sweep.runs)
    if not (found and remove_orphans):
        return Status(states(sweep), found)
    workdir.own_or_refuse(sweep.output_dir)
    found = orphans.orphans(sweep.output_dir, sweep.runs)  # as they are now that no other invocation can write there
    kept = [folder for folder in found if not orphans.remove_orphan(folder)]
    return Status(states(sweep), found, [folder for folder in found if folder not in kept], kept)


def accept(config_files: Iterable[str | Path] = (), targets: Iterable[str] = ()) -> acceptance.Acceptance:
    """Declare the chosen runs' notebooks up to date without executing them (``nbsweep accept``),
    and rewrite the sweep's summary files to say so. Refuses (SweepError) a target that names no
    run, and while another invocation owns the project or output folder."""
    sweep = load(config_files)
    acceptance.chosen_runs(sweep, list(targets))  # a target that names no run is refused before anything else
    workdir.own_or_refuse(sweep.output_dir)
    done = acceptance.accept(sweep, list(targets))
    if done.accepted:
        summary.write_results(sweep, announce=False)
    return done


def results(config_files: Iterable[str | Path] = ()) -> list[dict]:
    """One row per configured run, as summary.json holds them (state, parameters, metrics, files)."""
    return summary.rows(load(config_files))
