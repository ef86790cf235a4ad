"""nbsweep's Python API: plan a sweep, ask its runs' states, accept notebooks, read its results — as data.

Every call takes the config files as ``snakemake --configfile`` would (default:
``config/config.yaml``), relative to the current folder, and raises ``nbsweep.errors.SweepError``
(one sentence) for bad input. The ``nbsweep`` command only formats what these return::

    from nbsweep import api

    for state in api.status().states:
        print(state.run, state.state, [(c.what, c.name, c.old, c.new) for c in state.changes])
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from nbsweep import layout
from nbsweep.cache import keys, upkeep
from nbsweep.cache import settings as cache_settings
from nbsweep.cache.lookup import with_caches
from nbsweep.cache.stores import Store
from nbsweep.errors import SweepError
from nbsweep.model import papermill_flags
from nbsweep.packaged import SCHEMA
from nbsweep.provenance import accept as acceptance
from nbsweep.provenance import one_off
from nbsweep.provenance.records import read_record
from nbsweep.provenance.state import RunState, planned, run_state
from nbsweep.provenance.sweep import DEFAULT_CONFIG, Sweep, as_given
from nbsweep.results import compare, orphans, summary
from nbsweep.smk import launch, workdir

__all__ = [
    "CacheStatus", "OneOffRun", "Status", "accept", "cache_forget", "cache_prune", "cache_status", "diff", "load", "results", "run", "states", "status",
]  # fmt: skip


def load(config_files: Iterable[str | Path] = ()) -> Sweep:
    """The sweep the config files plan: ``sweep.runs`` maps (template, label) to each planned run."""
    return Sweep.load([Path(path) for path in config_files], SCHEMA)


def states(sweep: Sweep, caches: bool = False) -> list[RunState]:
    """Each configured run's state, in config order (``nbsweep.provenance.state``); with ``caches``,
    those the next invocation restores from a run cache say which (``RunState.cached``: the
    caches' manifests are read, nothing is restored)."""
    digests: dict[str, str | None] = {}
    by_id = {run.id: run for run in sweep.runs.values()}
    found = [run_state(run, sweep.output_dir, digests, by_id) for run in sweep.runs.values()]
    return with_caches(sweep, found, digests) if caches else found


@dataclass
class Status:
    """The runs' states and the output folders of runs no longer in the config (``orphans``);
    with ``remove_orphans``, which were ``removed`` and which ``kept`` (they hold files nbsweep did not write).
    ``one_offs``: the states of the one-off runs (``run``) in the output folder, which are no orphans."""

    states: list[RunState]
    orphans: list[Path]
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    one_offs: list[RunState] = field(default_factory=list)


def status(config_files: Iterable[str | Path] = (), remove_orphans: bool = False) -> Status:
    """What ``nbsweep status`` reports. ``remove_orphans`` refuses (SweepError) while another
    invocation owns the project or output folder."""
    sweep = load(config_files)
    found = orphans.orphans(sweep.output_dir, sweep.runs)
    one_offs = one_off.states(project_files(config_files), SCHEMA, sweep.runs)
    if not (found and remove_orphans):
        return Status(states(sweep, caches=True), found, one_offs=one_offs)
    workdir.own_or_refuse(sweep.output_dir)
    found = orphans.orphans(sweep.output_dir, sweep.runs)  # as they are now that no other invocation can write there
    kept = [folder for folder in found if not orphans.remove_orphan(folder)]
    return Status(states(sweep, caches=True), found, [folder for folder in found if folder not in kept], kept, one_offs)


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


def diff(names: Iterable[str], config_files: Iterable[str | Path] = (), previous: bool = False) -> compare.Comparison:
    """The named runs' executed notebooks side by side, cell by cell (``nbsweep diff``): runs as
    ``nbsweep status`` names them (``template/label``) or notebook paths; with ``previous``, one
    run's previous notebook and its current one; the values of the runs' secrets masked. Raises
    SweepError for a name without a notebook."""
    names = list(names)
    paths = all(name.endswith(".ipynb") and Path(name).is_file() for name in names)
    sweep = None if paths else load(config_files)
    output_dir, runs = (sweep.output_dir, sweep.runs) if sweep else ("", {})
    secrets = summary.secrets_of(runs.values())
    if previous:
        if len(names) != 1:
            raise SweepError(f"nbsweep diff --previous takes one run, not {len(names)}")
        return compare.compare(compare.previous_columns(names[0], output_dir, runs), secrets)
    if len(names) < 2:
        raise SweepError("nbsweep diff needs two runs or more (or one run with --previous)")
    return compare.compare([compare.column_named(name, output_dir, runs) for name in names], secrets)


@dataclass
class OneOffRun:
    """What ``run`` did: the run's ``target``, whether it was ``current`` before (nothing executed),
    its ``state`` afterwards and Snakemake's ``exit_status``."""

    target: Path
    current: bool
    state: RunState
    exit_status: int


def run(
    template: str,
    flags: papermill_flags.Flags,
    label: str | None = None,
    config_files: Iterable[str | Path] = (),
    snakemake_args: Iterable[str] = (),
) -> OneOffRun:
    """Execute ``template`` once with papermill's parameter, kernel and timeout flags (``nbsweep run``), through Snakemake
    and the packaged workflow like a config run, without changing the config. Its notebook is
    ``<output_dir>/<name>/<label>/<name>_<label>.ipynb`` (label: given, else made from the
    parameters); a run whose notebook records these parameters, template and inputs executes
    nothing. Bad input raises SweepError before anything is written or started."""
    parameters, settings = papermill_flags.parameters(flags), papermill_flags.settings(flags)
    planned = one_off.plan(project_files(config_files), SCHEMA, template, parameters, label, settings)
    cmd = launch.command(planned.target, [*planned.config_files, planned.marker], list(snakemake_args))
    current = Sweep(planned.output_dir, [planned.run]).is_current(planned.run)
    one_off.write_marker(planned)
    try:
        exit_status = launch.run(cmd, planned.run.id)
    finally:
        one_off.drop_unused_marker(planned)
    return OneOffRun(planned.target, current, run_state(planned.run, planned.output_dir, {}), exit_status)


def project_files(config_files: Iterable[str | Path]) -> tuple[Path, ...]:
    """The config files given, else config/config.yaml if it exists: a one-off run needs no config."""
    return tuple(as_given(Path(path)) for path in config_files) or ((DEFAULT_CONFIG,) if DEFAULT_CONFIG.exists() else ())


@dataclass
class CacheStatus:
    """The run caches of the config (``nbsweep cache status``): each one's entries and size, local
    first (``stores``); those that cannot be read now, with why (``unusable``); and what the last
    invocation that executed in this folder found (``last``: hits, misses, ignored; None if none)."""

    stores: list[upkeep.Usage]
    unusable: dict[str, str]
    last: dict | None


def cache_stores(config_files: Iterable[str | Path] = (), shared: bool = True) -> tuple[Sweep | None, list[Store], dict[str, str]]:
    """The sweep and its caches (the shared ones too with ``shared``), and those that cannot be
    opened, with why. Outside a project (no config file named, none at config/config.yaml): no
    sweep, and the per-user local cache, which is no project's."""
    config_files = list(config_files)
    sweep = load(config_files) if config_files or DEFAULT_CONFIG.exists() else None
    configured = sweep.cache if sweep else cache_settings.defaults()
    stores, unusable = [], {}
    for url, is_shared in configured.stores if configured else []:
        if shared or not is_shared:
            try:
                stores.append(Store(url, is_shared))
            except Exception as err:  # noqa: BLE001 -- fsspec: unknown protocol, missing backend, bad URL
                unusable[url] = f"{type(err).__name__}: {err}"
    return sweep, stores, unusable


def cache_status(config_files: Iterable[str | Path] = ()) -> CacheStatus:
    """Where the config's run caches are, how many entries and bytes each holds, and the last invocation's hits and misses."""
    _, stores, unusable = cache_stores(config_files)
    usages = []
    for store in stores:
        try:
            usages.append(upkeep.usage(store))
        except Exception as err:  # noqa: BLE001 -- an unreachable shared cache, whatever its backend raises
            unusable[store.url] = f"{type(err).__name__}: {err}"
    try:
        last = json.loads(layout.CACHE_STATS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = None
    return CacheStatus(usages, unusable, last)


def cache_prune(
    config_files: Iterable[str | Path] = (), older_than: float | None = None, max_size: int | None = None, shared: bool = False
) -> list[upkeep.Pruned]:
    """Remove the local cache's entries last used more than ``older_than`` seconds ago, then the
    least recently used beyond ``max_size`` bytes, and what no entry refers to; ``shared``: the
    shared caches too (where an entry's last use is when it was written)."""
    _, stores, unusable = cache_stores(config_files, shared)
    if unusable:
        raise SweepError(f"cannot open the cache {next(iter(unusable))} ({next(iter(unusable.values()))})")
    return [on_store(store, "prune", partial(upkeep.prune, store, older_than, max_size)) for store in stores]


def cache_forget(config_files: Iterable[str | Path] = (), targets: Iterable[str] = ()) -> dict[str, int]:
    """Remove from every cache the entries of the runs ``targets`` name (run ids, template names or
    notebook paths, as ``nbsweep accept`` takes them): their planned entry, that of their notebook,
    and every entry they made before. How many entries each cache lost."""
    targets = list(targets)
    if not targets:
        raise SweepError("name the runs to forget: run ids (template/label), template names or notebook paths")
    sweep, stores, unusable = cache_stores(config_files)
    if unusable:
        raise SweepError(f"cannot open the cache {next(iter(unusable))} ({next(iter(unusable.values()))})")
    sweep = sweep or load(config_files)  # the runs named are a project's: says its config is missing
    runs = acceptance.chosen_runs(sweep, targets)
    digests: dict[str, str | None] = {}
    fingerprints = {planned(run, digests).fingerprint for run in runs}
    fingerprints |= {made for run in runs if (made := read_record(Path(sweep.target(run))).get("fingerprint"))}
    templates = {target for target in targets if target in sweep.template_names}
    removed = {}
    for store in stores:
        kernels = {run.kernel for run in runs}
        environments = [keys.environment(kernel) for kernel in kernels] if store.shared else [None]
        wanted = {keys.entry_key(fingerprint, environment) for fingerprint in fingerprints for environment in environments}
        removed[store.url] = on_store(
            store, "forget entries in", partial(upkeep.forget, store, wanted, {run.id for run in runs}, templates)
        )
    return removed


def on_store(store: Store, doing: str, action):
    """``action()`` on ``store``; what its backend raises (unreachable, not a folder) as one sentence."""
    try:
        return action()
    except Exception as err:  # noqa: BLE001 -- fsspec and its backends raise many types
        raise SweepError(
            f"cannot {doing} the cache {store.url} ({type(err).__name__}: {err}); check that it is reachable and a folder or bucket"
        ) from None
