"""What nbsweep relies on in Snakemake (and CPython's threading) that is not Snakemake's documented interface.

Each function wraps one use and names the version it was checked against; ``tests/unit/test_adapters.py``
fails loudly when a release changes what one relies on. Imports nothing of nbsweep.
"""

import os
import re
import sys
import threading
import time
from pathlib import Path

# What Snakemake says when it cannot read a --configfile (before any workflow code runs, naming no file).
# snakemake 9.27.1: snakemake.common.configfile.load_configfile's WorkflowErrors, or the decoding error itself.
CONFIGFILE_ERRORS = (
    "Config file is not valid JSON or YAML",
    "Config file must be given as JSON or YAML with keys at top level",
    "UnicodeDecodeError",
)
# Exceptions Snakemake logs for a failed job right before the job's error block.
# snakemake 9.27.1: snakemake.exceptions.print_exception logs ``exception=ex.__class__.__name__``.
JOB_FAILURE_EXCEPTIONS = {"RuleException", "CalledProcessError"}
RESTART_MESSAGE = "Trying to restart job"  # snakemake 9.27.1: JobScheduler logs it before a retry
TARGET_JOBS_OPTION = "--target-jobs"  # snakemake 9.27.1: how its executors name a job process's jobs
# A wildcard value ending in a part repeated 20 to 100 times fails the whole DAG (PeriodicWildcardError).
# snakemake 9.27.1: snakemake.io.PeriodicityDetector(min_repeat=20, max_repeat=100), from DAG.check_periodic_wildcards.
_PERIODIC = re.compile(r"((?P<value>.+)(?P=value){19,99})$")


def is_main_process(workflow) -> bool:
    """Whether this is the Snakemake process that plans and schedules (not a job's own process)."""
    return workflow.is_main_process  # snakemake 9.27.1: Workflow.is_main_process property


def is_dry_run(workflow) -> bool:
    """Whether Snakemake was told ``-n``."""
    return workflow.dryrun  # snakemake 9.27.1: Workflow.dryrun property


def executes_locally(workflow) -> bool:
    """Whether jobs run on this machine (no cluster or remote executor)."""
    return workflow.local_exec  # snakemake 9.27.1: Workflow.local_exec property


def local_cores(workflow) -> int:
    """How many cores the local jobs share (``--cores``)."""
    return workflow.global_resources["_cores"].value or 1  # snakemake 9.27.1: Workflow.global_resources["_cores"], a Resource


def job_threads(workflow, threads: int) -> int:
    """The threads Snakemake gives a job of a rule with ``threads``: at most ``--max-threads`` and ``--cores``."""
    # snakemake 9.27.1: Rule.expand_resources constrains "_cores" by resource_settings.max_threads and global "_cores"
    bounds = [workflow.resource_settings.max_threads, workflow.global_resources["_cores"].value]
    return min([threads, *(bound for bound in bounds if bound)])


def job_environment(threads: int, tmpdir: str) -> dict[str, str]:
    """The environment a job's command gets from Snakemake's local executor (its shell and prefix,
    the thread-count and temp-dir variables of a job of ``threads`` threads and that ``tmpdir``
    resource, what the shell itself sets), read by running ``env`` as a job's command would run."""
    from snakemake.shell import shell

    # snakemake 9.27.1: shell(cmd, read=True, threads=..., resources=...) takes them as the job's context
    # (shell.__new__ builds envvars from them and runs cmd with the job's shell and prefix)
    listing = shell("exec env -0", read=True, threads=threads, resources={"tmpdir": tmpdir})
    return dict(entry.split("=", 1) for entry in listing.split("\0") if "=" in entry)


def has_executor(workflow) -> bool:
    """Whether this invocation executes jobs (not --lint, --list, --unlock, a DAG printout, ...)."""
    return workflow.executor_plugin is not None  # snakemake 9.27.1: Workflow.executor_plugin property, None until it executes


def note_present(workflow, paths) -> None:
    """Tell Snakemake that files written while it builds the job graph exist (a notebook put back
    from aside or restored from a cache): it may have listed their folder already, and would then
    schedule a job for a "missing" output. In a dry-run, which writes nothing, a missing one is
    taken as written now."""
    from snakemake_interface_storage_plugins.io import Mtime

    cache = workflow.iocache  # snakemake 9.27.1: Workflow.iocache, an IOCache
    for path in map(str, paths):
        cache.exists_local[path] = True  # IOCache.exists_local: an ExistsDict keyed by path, read before a stat
        if os.path.exists(path):
            cache.mtime.pop(path, None)  # IOCache.mtime: collected for existing files once the graph is built
        else:
            cache.mtime[path] = Mtime(local=time.time())  # snakemake-interface-storage-plugins 4: Mtime(local=...)


def config_files(workflow) -> list[str]:
    """The ``--configfile`` files of this invocation, else those of ``configfile:`` directives."""
    # snakemake 9.27.1: Workflow.overwrite_configfiles property (config_settings.configfiles), Workflow.configfiles list
    return list(workflow.overwrite_configfiles or workflow.configfiles)


def config_args(workflow) -> list[str]:
    """The ``--config KEY=VALUE`` entries of this invocation (its command line's and its profile's), as written."""
    return list(workflow.config_settings.config_args or [])  # snakemake 9.27.1: ConfigSettings.config_args


def uses_deployment(workflow) -> bool:
    """Whether jobs run in a software deployment (``--sdm conda``, apptainer)."""
    return bool(workflow.deployment_settings.deployment_method)  # snakemake 9.27.1: DeploymentSettings.deployment_method


def join_groups(workflow, parents: dict[str, str]) -> None:
    """Map groups (name -> parent group id), as ``--group-components`` counts them."""
    workflow.parent_groupids.update(parents)  # snakemake 9.27.1: Workflow.parent_groupids property, a dict it reads when grouping


def forces(workflow, names: set[str], target: str) -> bool:
    """Whether the command line forces a job named by one of ``names`` (rules, outputs) or with output ``target``
    (``-F``, ``-R``, ``-f``); only while the DAG is built."""
    # snakemake 9.27.1: Workflow.dag_settings, DAGSettings.forceall/forcerun/targets/forcetargets
    settings = workflow.dag_settings
    targets = set(map(str, settings.targets)) if settings.forcetargets else set()
    return bool(settings.forceall or names & (set(map(str, settings.forcerun)) | targets) or target in targets)


def selection_flags(workflow) -> dict[str, list[str]]:
    """The values of ``--forcerun``, ``--until`` and ``--omit-from``, as given; only while the DAG is built."""
    # snakemake 9.27.1: Workflow.dag_settings, DAGSettings.forcerun/until/omit_from (snakemake.settings.types)
    settings = workflow.dag_settings
    return {
        "--forcerun": sorted(map(str, settings.forcerun)),
        "--until": sorted(map(str, settings.until)),
        "--omit-from": sorted(map(str, settings.omit_from)),
    }


def rule_names(workflow) -> set[str]:
    """The names of the workflow's rules."""
    return {rule.name for rule in workflow.rules}  # snakemake 9.27.1: Workflow.rules property, Rule.name


def has_producer(workflow, path: str) -> bool:
    """Whether one of the workflow's rules can make the file ``path``."""
    return any(rule.is_producer(path) for rule in workflow.rules)  # snakemake 9.27.1: Rule.is_producer(requested_output)


def omit_from_files(workflow, files: list[str]) -> None:
    """Leave the jobs making ``files``, and all downstream of them, out of the DAG being built, as
    ``--omit-from FILE`` does; only while the DAG is built."""
    # snakemake 9.27.1: Workflow.dag (set before its jobs are added), DAG.omitfiles, a set DAG.delete_omitfrom_jobs
    # reads once every job is added
    workflow.dag.omitfiles.update(files)


def target_jobs(workflow, argv: list[str] | None = None) -> list[tuple[str, dict]] | None:
    """(rule, wildcards) of the jobs a job's process was started for; None when it was started for none
    or its command line is not one Snakemake's executors write.

    Snakemake sets ``workflow.dag_settings`` only after the Snakefile is parsed, so while it is parsed
    the jobs are read from ``sys.argv`` (``--target-jobs RULE:WILDCARD=VALUE,... ...``), by Snakemake's own parser.
    """
    # snakemake 9.27.1: Workflow.dag_settings (None while parsing), DAGSettings.target_jobs,
    # snakemake.target_jobs.parse_target_jobs_cli_args, TargetSpec.rulename/wildcards_dict
    from snakemake.target_jobs import parse_target_jobs_cli_args

    settings = workflow.dag_settings
    if settings is not None:
        specs = settings.target_jobs
    else:
        argv = sys.argv[1:] if argv is None else argv
        if argv.count(TARGET_JOBS_OPTION) != 1:
            return None
        values = argv[argv.index(TARGET_JOBS_OPTION) + 1 :]
        values = values[: next((i for i, value in enumerate(values) if value.startswith("-")), len(values))]
        try:
            specs = parse_target_jobs_cli_args(values)
        except Exception:  # noqa: BLE001 -- not a command line we know
            return None
    return [(spec.rulename, dict(spec.wildcards_dict)) for spec in specs or ()]


def command_line_configfiles(argv: list[str] | None = None) -> list[Path]:
    """The files a Snakemake command line (default: this process's) names with ``--configfile``/``--configfiles``
    (or an abbreviation argparse accepts, down to ``--configf``), each taking every following argument up to
    the next option, as argparse's ``nargs="+"`` does."""
    # snakemake 9.27.1: snakemake.cli's --configfile/--configfiles option (nargs="+", argparse abbreviations allowed)
    files: list[Path] = []
    taking = False
    for arg in sys.argv[1:] if argv is None else argv:
        name, equals, value = arg.partition("=")
        if len(name) >= len("--configf") and "--configfiles".startswith(name):
            taking = not equals
            files += [Path(value)] if equals else []
        elif arg.startswith("-"):
            taking = False
        elif taking:
            files.append(Path(arg))
    return files


def is_configfile_error(message: str) -> bool:
    """Whether a logged error is Snakemake failing to read a ``--configfile`` (``CONFIGFILE_ERRORS``)."""
    return any(text in message for text in CONFIGFILE_ERRORS)


def announces_job_failure(record) -> bool:
    """Whether an error record is the exception Snakemake logs right before a failed job's error block."""
    return getattr(record, "exception", None) in JOB_FAILURE_EXCEPTIONS


def is_restart_message(message: str) -> bool:
    """Whether an info line is Snakemake retrying a failed job (``--retries``)."""
    return message.startswith(RESTART_MESSAGE)


def nothing_to_be_done_message() -> str:
    """The line Snakemake logs when every target is up to date."""
    from snakemake.common import NOTHING_TO_BE_DONE_MSG  # snakemake 9.27.1

    return NOTHING_TO_BE_DONE_MSG


def logged_by_snakemake(pathname: str) -> bool:
    """Whether a log record was emitted by Snakemake's own code (not one of its plugins')."""
    import snakemake  # snakemake 9.27.1: its own messages come from modules inside the package

    return Path(pathname).resolve().is_relative_to(Path(snakemake.__file__).resolve().parent)


def default_console_handler(settings, stream):
    """Snakemake's own console handler, filter and formatter (its usual output), for ``settings``
    (the logger plugin's ``OutputSettings``)."""
    # snakemake 9.27.1: snakemake.logging.ColorizingTextHandler, DefaultFilter, DefaultFormatter
    from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter

    return ColorizingTextHandler(
        nocolor=settings.nocolor,
        stream=stream,
        formatter=DefaultFormatter(settings.quiet, settings.show_failed_logs),
        filter=DefaultFilter(settings.quiet, settings.debug_dag, settings.verbose, settings.dryrun, settings.printshellcmds),
    )


def resource_reading(name: str, value, sized: bool) -> tuple[str, int]:
    """(canonical name, number) Snakemake makes of resource ``name: value``, a size (``sized``) in
    megabytes; ValueError (its first line) if it cannot read it."""
    # snakemake 9.27.1: snakemake.resources.Resource(name, value), Resource.standardize_size(), .name, .value
    from snakemake.resources import Resource
    from snakemake_interface_common.exceptions import WorkflowError

    try:
        resource = Resource(name, value)
        if sized:
            resource = resource.standardize_size()
        return resource.name, resource.value
    except (WorkflowError, TypeError, ValueError) as err:  # ResourceConversionError is a TypeError
        raise ValueError(str(err).splitlines()[0]) from None


def on_exit(callback) -> None:
    """Call ``callback`` when the process ends, before Python joins its non-daemon threads (plain
    ``atexit`` would run only after Snakemake's pending rate-limiter timers have expired)."""
    # CPython 3.11.7: threading._register_atexit (3.9+, what concurrent.futures uses); atexit where it is missing
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        import atexit

        register = atexit.register
    register(callback)


def cancel_rate_limiter_timers() -> None:
    """Cancel Snakemake's pending ``threading.Timer`` threads, which only wait to look at jobs again."""
    # snakemake 9.27.1: JobScheduler._schedule_reevalutation starts a threading.Timer with a lambda of its module
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer) and getattr(thread.function, "__module__", "").startswith("snakemake"):
            thread.cancel()


def periodic_part(value: str) -> tuple[str, int] | None:
    """The part a wildcard value ends in repeated so often that Snakemake refuses it (taking it for
    an endless recursion) and how many times; None when Snakemake accepts the value."""
    found = _PERIODIC.search(value)
    return None if found is None else (found.group("value"), len(found.group(1)) // len(found.group("value")))
