"""What the packaged workflow's rules call into: plan the sweep, and write results at the end.

The same calls serve every way a project uses the workflow (``module:``, ``include:``, ``-s``).
Snakemake runs ``onsuccess``/``onerror`` handlers only for the main Snakefile and not at all
when nothing is to be done, so the results are written by a hook on the Snakemake process's exit.
"""

import os
import shlex
import sys
import time
from pathlib import Path

from nbsweep import layout
from nbsweep.adapters import snakemake_internals as smk
from nbsweep.cache.restore import Caches
from nbsweep.errors import SweepError
from nbsweep.execution import warm_client
from nbsweep.execution.liveness import SNAKEMAKE_PID
from nbsweep.messages import refusal, say
from nbsweep.model.plan import check_output_dir
from nbsweep.model.rule_names import RUN_RULE, rule_run
from nbsweep.packaged import SCHEMA
from nbsweep.provenance import kept_aside, state
from nbsweep.provenance.sweep import DEFAULT_CONFIG, Sweep, as_given
from nbsweep.results import failures, render, summary, tracking
from nbsweep.smk import interrupts, main_process, warm_start, workdir, writable
from nbsweep.smk.launch import ONE_OFF
from nbsweep.smk.output_dir import check_output_dir_is_ours

INVOCATION = "NBSWEEP_INVOCATION"  # names the invocation whose job files a job reads


def config_files(workflow) -> list[Path]:
    """The config files of this invocation: ``--configfile`` ones, else those of the project's
    ``configfile:`` directives, else config/config.yaml. nbsweep reads them itself."""
    return [Path(path) for path in smk.config_files(workflow)] or [DEFAULT_CONFIG]


def config_overrides(workflow) -> list[str]:
    """The ``--config KEY=VALUE`` entries of this invocation (its command line's and its profile's),
    as written: nbsweep reads the values itself, as YAML 1.2 (``nbsweep.model.config.parse_overrides``)."""
    return smk.config_args(workflow)


def plan_or_exit(workflow) -> Sweep:
    """Plan the sweep, writing nothing in the project; bad input ends the process with one
    sentence and no traceback.

    The main process also takes the folder's ownership (recovering what a killed invocation
    left; the output folder's comes once it executes: ``claim_output``) and names this invocation
    for its jobs (``NBSWEEP_INVOCATION``, inherited by every job, on a cluster too). Job files
    are written while the DAG is built: see ``job_inputs``. A job's own process (on a cluster
    node) reads what the main process planned instead, when it can.
    """
    os.environ[SNAKEMAKE_PID] = str(os.getpid())  # for its jobs: nbsweep.execution.liveness.snakemake_alive
    if not smk.is_main_process(workflow) and (sweep := planned_by_main(workflow)) is not None:
        return sweep
    files = config_files(workflow)
    where = ", ".join(str(as_given(path)) for path in files)
    try:
        sweep = Sweep.load(files, SCHEMA, config_overrides(workflow))
        check_output_dir(sweep.output_dir, where)
        configs = [path for path in files if not str(path).endswith(layout.ONE_OFF_SUFFIX)]  # the user's, not nbsweep's own
        sources = [*configs, *dict.fromkeys(run.template.path for run in sweep.runs.values())]
        check_output_dir_is_ours(sweep.output_dir, where, summary.FILES, sources)
    except SweepError as err:
        sys.exit(refusal(err))
    if smk.is_main_process(workflow):
        sweep.owner = workdir.take_ownership()
        if sweep.owner:
            workdir.recover(outputs={path: sweep.target(run) for run in sweep.producing_runs for path in run.outputs})
        os.environ[INVOCATION] = sweep.invocation = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        warm_client.export_secret_variables(sweep.runs.values())  # for its jobs: the warm runner keeps these out of its environment
        main_process.MAIN["one_off"] = os.environ.get(ONE_OFF, "")  # nbsweep run: no summary of the config's runs
        smk.on_exit(lambda: finish_as_owner(workflow, sweep))
        interrupts.install()
        remember(sweep)
    else:
        sweep.invocation = os.environ.get(INVOCATION, "")
    return sweep


def refuse(sweep: Sweep, sentence: str) -> None:
    """End the invocation with one sentence (nothing was executed, so no results are written)."""
    sweep.refused = True
    sys.exit(refusal(sentence))


def run_or_exit(sweep: Sweep, name: str, label: str):
    """The configured run for a target's wildcards; a target of no run ends with one sentence."""
    try:
        return sweep.configured_run(name, label)
    except SweepError as err:
        refuse(sweep, str(err))


def job_inputs(workflow, sweep: Sweep, run) -> list[str]:
    """The run's job file when the run executes in this invocation (it is not current, or
    Snakemake was told to force it: ``-F``, ``-R nbsweep_run``, ``-R``/``-f`` with its target);
    else nothing, so Snakemake finds the run up to date. In a job's own process (a cluster job)
    the main process has decided: the job file it wrote, if any."""
    if not smk.is_main_process(workflow):
        path = layout.job_file(sweep.invocation, run.name, run.label)
        return [str(path)] if path.exists() else []
    output_refusal = claim_output(workflow, sweep)
    start_planning_runs(workflow, sweep)
    is_forced = forcing(workflow, sweep)
    if not sweep.executes(run, is_forced):
        return []
    if smk.is_dry_run(workflow):  # for the console, which lists each run with why it would execute
        main_process.MAIN.setdefault("reasons", {})[(run.name, run.label)] = sweep.why_executes(run, is_forced)
    if not smk.is_dry_run(workflow) and (made := kept_aside.fingerprint(Path(sweep.target(run)))):
        sweep.aside[(run.name, run.label)] = made  # kept aside if the run makes it anew from other provenance
    if not smk.is_dry_run(workflow) and not sweep.owner:
        refuse(sweep, output_refusal or workdir.refusal())
    if not smk.is_dry_run(workflow) and (
        folder := writable.unwritable(Path(sweep.target(run)).parent, {})
    ):  # forced or named: still in the DAG
        refuse(sweep, f"run {run.id} cannot execute: its folder {folder} cannot be written; {writable.FIX}")
    try:
        path = sweep.job_file(run, dry=smk.is_dry_run(workflow), forced=is_forced(run))
    except OSError as err:  # e.g. a full disk
        refuse(sweep, f"cannot write the job file of run {run.id} ({err.strerror}); free space and run again")
    if "ahead" not in main_process.MAIN:  # the first run that executes: the warm runner gets ready meanwhile
        warm_start.start(workflow, sweep, run, str(path))
    return [str(path)]


def claim_output(workflow, sweep: Sweep) -> str | None:
    """In the main process of an invocation that executes (not -n, --lint, --list, ...) and owns the
    project folder: own the output folder too, once (``workdir.claim_output``, which creates it).
    The sentence refusing this invocation when another one owns that folder, one inside it or one
    around it; this invocation is then no owner, and writes no results."""
    executes = smk.is_main_process(workflow) and smk.has_executor(workflow) and not smk.is_dry_run(workflow)
    if "output_refusal" not in main_process.MAIN and executes and sweep.owner:
        main_process.MAIN["output_refusal"] = workdir.claim_output(sweep.output_dir)
        sweep.owner = main_process.MAIN["output_refusal"] is None
    return main_process.MAIN.get("output_refusal")


def finish_as_owner(workflow, sweep: Sweep) -> None:
    """At exit: ``finish``, writing results only as the output folder's owner too (an invocation
    in which no run was planned into the DAG claims it here; a refused one claims nothing)."""
    if not sweep.refused:
        claim_output(workflow, sweep)
    finish(workflow, sweep)


def upstream_files(workflow, sweep: Sweep, run) -> tuple[list[str], list[str]]:
    """The files a run waits for (inputs other runs produce, notebooks of the runs it is after),
    split into those of upstream runs that execute in this invocation and the others.

    Snakemake passes "this job runs" on to the jobs that depend on it only through inputs not
    marked ``ancient``; marking the others ancient keeps their mtimes from ever counting."""
    files = [(path, producer) for path, producer in run.produced] + [(target, run_id) for run_id, target in run.after]
    if not files or not smk.is_main_process(workflow):
        return [], [path for path, _ in files]
    claim_output(workflow, sweep)
    start_planning_runs(workflow, sweep)
    is_forced = forcing(workflow, sweep)
    fresh = {up for up in sweep.upstream_keys(run) if sweep.executes(sweep.runs[up], is_forced)}
    split: tuple[list[str], list[str]] = ([], [])
    for path, run_id in files:
        split[tuple(run_id.split("/", 1)) not in fresh].append(path)
    return split


def forcing(workflow, sweep: Sweep):
    """``forced`` for a run of this sweep."""
    return lambda run: forced(workflow, sweep.target(run), sweep.rule_name(run), run.name)


def start_planning_runs(workflow, sweep: Sweep) -> None:
    """Once, in the main process, as the DAG is built (before any run's state is asked): check the
    selection flags, and let current kept-aside notebooks and cache entries be put back (``restorer``)."""
    if "planning_runs" in main_process.MAIN:
        return
    main_process.MAIN["planning_runs"] = True
    check_selection(workflow, sweep)
    sweep.caches = Caches(sweep.cache, sweep.lookups)
    sweep.restores = restorer(workflow, sweep)


def check_selection(workflow, sweep: Sweep) -> None:
    """Refuse a ``--forcerun``/``--until``/``--omit-from`` value that names no template, rule or file a
    rule makes (Snakemake would ignore it), and pass ``--omit-from TEMPLATE`` on as the template's
    notebooks (its rule only gathers them, downstream of its runs). ``--forcerun TEMPLATE`` is read by
    ``forced``; ``--until TEMPLATE`` needs nothing: its runs are its rule's inputs."""
    flags = smk.selection_flags(workflow)
    templates, rules = set(sweep.template_names), smk.rule_names(workflow)
    for flag, values in flags.items():
        for value in values:
            if value not in templates and value not in rules and not smk.has_producer(workflow, value):
                refuse(sweep, selection_refusal(sweep, flag, value))
    omitted = [target for name in flags["--omit-from"] if name in templates for target in sweep.targets(name)]
    if omitted:
        smk.omit_from_files(workflow, omitted)


def restorer(workflow, sweep: Sweep):
    """What ``Sweep.is_current`` calls for a run that is not current: put a notebook that is what it
    would produce in place — its kept-aside one, else its entry in a cache (``nbsweep.cache.restore``)
    — as the owner of an invocation that executes (a dry-run or a DAG printout only counts it as
    current, writing nothing), and say whether the run is current now."""
    executes = smk.has_executor(workflow) and not smk.is_dry_run(workflow)

    def restore(run) -> bool:
        target = Path(sweep.target(run))
        if not target.exists() and layout.RunFiles(target).interrupted.exists():
            return False  # Snakemake reruns the output of a job it saw interrupted, whatever is put in its place
        aside = state.kept_aside_is_current(run, target, sweep.digests)
        if not executes:
            current = aside or sweep.caches.would_restore(run, state.planned(run, sweep.digests).fingerprint)
        elif not sweep.owner:
            return False
        else:
            current = put_back(run, layout.RunFiles(target)) if aside else from_cache(sweep, run)
        if current:
            smk.note_present(workflow, [target, *run.outputs])  # Snakemake may have found them missing already
        return current

    def put_back(run, files: layout.RunFiles) -> bool:
        try:
            kept_aside.restore(files)
        except OSError:
            return False  # it executes instead
        sweep.restored.append(run.id)
        if run.render and not files.html.exists():  # kept aside without its rendering (e.g. interrupted)
            try:
                render.render(files.target)
            except Exception:  # noqa: BLE001 -- nbconvert raises many types; `nbsweep_renderings` can retry
                say(f"nbsweep: could not render {files.target}; `snakemake nbsweep_renderings` retries")
        if (notebooks := main_process.MAIN.get("notebooks")) is not None:
            notebooks[files.target] = tracking.notebook_identity(files.target)  # put back, not executed: not logged to MLflow
        return True

    return restore


def from_cache(sweep: Sweep, run) -> bool:
    """Restore the run's entry from a cache: the notebook it replaces, if made from other settings,
    is kept aside as an execution's would be. MLflow logs the restored run once, as a restore."""
    target = Path(sweep.target(run))
    before = kept_aside.fingerprint(target)
    if not sweep.caches.restore(run, layout.RunFiles(target), state.planned(run, sweep.digests), sweep.digests):
        return False
    if before:
        sweep.aside[(run.name, run.label)] = before
    return True


def kept_aside_lines(sweep: Sweep, most: int = 5) -> list[str]:
    """What this invocation kept aside, put back and restored from a cache, one line each (naming the config files)."""
    moved = []
    for key, made in sweep.aside.items():
        files = layout.RunFiles(Path(sweep.target(sweep.runs[key])))
        if kept_aside.fingerprint(files.previous) == made != kept_aside.fingerprint(files.target):
            moved.append("/".join(key))
    config = ", ".join(sweep.config_files)
    lines = []
    if moved:
        lines.append(
            f"nbsweep: with {config}, {len(moved)} notebooks made from other settings were kept aside as "
            f"<notebook>.previous.ipynb ({listing(moved, most)}); with those settings again they are put back without executing"
        )
    if sweep.restored:
        lines.append(
            f"nbsweep: with {config}, {len(sweep.restored)} notebooks kept aside are what their runs would produce and were put back "
            f"without executing ({listing(sweep.restored, most)}); the ones they replaced are kept aside as <notebook>.previous.ipynb"
        )
    if sweep.caches and sweep.caches.restored:
        lines.append(cache_line(sweep.caches.restored, "restored from cache", most))
    return lines


def cache_line(ids: list[str], done: str, most: int = 5) -> str:
    """One line for the runs restored (or that would be) from a cache instead of executing."""
    if len(ids) == 1:
        return f"nbsweep: run {ids[0]} {done} instead of executing"
    return f"nbsweep: {len(ids)} runs {done} instead of executing ({listing(ids, most)})"


def listing(ids: list[str], most: int) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def selection_refusal(sweep: Sweep, flag: str, value: str) -> str:
    """The sentence refusing a selection flag's value that selects nothing."""
    example = next(iter(sweep.runs.values()), None)
    named = f" (e.g. {example.name}), a run's notebook (e.g. {sweep.target(example)})" if example else ", a run's notebook"
    return f"{flag} {value} names no template, run or rule of this sweep, so it would select nothing; name a template{named} or a rule"


def planned_by_main(workflow) -> Sweep | None:
    """In a job's process: the sweep as its invocation's main process planned it (the plan
    snapshot), with only the job's own runs; None when there is no snapshot to read (the process
    then plans from the config, as the main process did)."""
    invocation = os.environ.get(INVOCATION, "")
    if not invocation:
        return None
    try:
        sweep = Sweep.from_snapshot(layout.plan_snapshot(invocation), only=own_runs(workflow))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    sweep.invocation = invocation
    return sweep


def own_runs(workflow, argv: list[str] | None = None) -> set[tuple[str, str]] | None:
    """(name, label) of the runs a job's process was started for (by nbsweep_run's wildcards, or
    by the name of a run's own rule, ``nbsweep.model.rule_names``); None when it was started for
    anything else (which then needs every run). ``argv``: its command line (default: this process's,
    read while the Snakefile is parsed: ``snakemake_internals.target_jobs``)."""
    runs = set()
    for rulename, wildcards in smk.target_jobs(workflow, argv) or ():
        run = rule_run(rulename)  # a run with its own rule, else nbsweep_run's wildcards
        if run is None and rulename == RUN_RULE and {"notebook", "label"} <= set(wildcards):
            run = (wildcards["notebook"], wildcards["label"])
        if run is None:
            return None
        runs.add(run)
    return runs or None


def forced(workflow, target: str, rule: str = RUN_RULE, template: str = "") -> bool:
    """Whether the command line forces the run with this target, rule and template (read while the DAG is
    built): ``-F``, ``-R`` naming its template, its notebook or its rule, ``-f`` with its notebook as target."""
    return smk.forces(workflow, {RUN_RULE, rule, target, template} - {""}, target)


def job_python(workflow) -> str:
    """The shell words that start the jobs' Python with nbsweep importable: this interpreter, or
    the job's conda env's ``python`` (``--sdm conda``) with this nbsweep on its path."""
    package_root = shlex.quote(str(Path(__file__).resolve().parents[2]))
    if smk.uses_deployment(workflow):
        return f"PYTHONPATH={package_root}${{PYTHONPATH:+:$PYTHONPATH}} exec python"
    return f"exec {shlex.quote(sys.executable)}"


def priorities(sweep: Sweep) -> dict[tuple[str, str], int]:
    """Snakemake job priority of each run, by its place in the config: the first run highest.
    Snakemake's schedulers start the ready jobs of highest priority first (the greedy one breaks
    ties between equal priorities in no particular order), so runs start in config order when
    nothing else decides (``--prioritize`` targets, input sizes come after priority)."""
    return {key: len(sweep.runs) - position for position, key in enumerate(sweep.runs)}


def join_batches(workflow, sweep: Sweep) -> None:
    """Map every batch group (``batch_size``) to one parent group id, so that a single
    ``--group-components nbsweep_batch=N`` entry (profiles/slurm) joins each batch into one job."""
    smk.join_groups(workflow, dict.fromkeys(filter(None, sweep.groups.values()), "nbsweep_batch"))


def finish(workflow, sweep: Sweep) -> None:
    """At exit of an invocation that executed (not -n, --lint, --unlock, ...) as the folder's
    owner: write the results (not for a one-off run, ``nbsweep.smk.launch``), drop the invocation's job files, then cancel Snakemake's
    rate-limiter timers, which only wait to look at jobs again. A run left out of the DAG because
    its folder cannot be written failed, which Snakemake never saw: the process then exits 1."""
    sweep.remove_job_files()
    if smk.is_dry_run(workflow) and sweep.caches and sweep.caches.would:
        say(cache_line(sweep.caches.would, "would be restored from cache"))
    if not smk.has_executor(workflow) or smk.is_dry_run(workflow) or not sweep.owner or sweep.refused:
        return
    for line in kept_aside_lines(sweep):
        say(line)
    if sweep.caches:
        sweep.caches.finish()
    if not main_process.MAIN.get("one_off"):
        summary.write_results(sweep)
    tracking.log_executed(sweep, sweep.mlflow, main_process.MAIN.get("notebooks"))
    smk.cancel_rate_limiter_timers()
    if any(failure.status == "failed" for failure in sweep.blocked.values()):
        exit_failed()


def exit_failed() -> None:
    """End the process with status 1 now. Snakemake has finished (this runs at its exit) and
    decided its status without the runs nbsweep kept from it; flush what it printed first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(1)


def remember(sweep: Sweep) -> None:
    """Keep the main process's sweep for ``refresh`` and its secrets' values for the console to
    mask; when MLflow tracking is on, the identity of every executed notebook, so that its end logs
    exactly the runs that executed. Runs whose folder cannot be written are left out of the DAG
    here, before it is built (``nbsweep.smk.writable``)."""
    main_process.MAIN["sweep"] = sweep
    main_process.MAIN["secrets"] = summary.secrets_of(sweep.runs.values())
    main_process.MAIN["notebooks"] = tracking.notebook_states(sweep) if sweep.mlflow else None
    files = [layout.RunFiles(Path(sweep.target(run))) for run in sweep.runs.values()]
    failures.remember_notebooks(path for each in files for path in (each.target, each.failed))
    writable.leave_out_blocked(sweep)
