"""The ``nbsweep`` command (also ``python -m nbsweep``): a thin layer over the package."""

import argparse
import os
import sys
from pathlib import Path

from nbsweep.errors import SweepError
from nbsweep.messages import refusal, say, terminal_safe
from nbsweep.model.papermill_flags import Flags, unsupported


def add_configfile_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--configfile",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="config files, as given to snakemake (default: config/config.yaml)",
    )


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="nbsweep",
        description="Run one Jupyter notebook template over many parameter sets with Snakemake. "
        "In a project folder: `nbsweep init`, edit config/config.yaml, then `snakemake --cores 8`.",
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init = commands.add_parser(
        "init",
        help="make this folder an nbsweep project (Snakefile, config, profile, .gitignore)",
        description="Write a Snakefile using the packaged workflow, config/config.yaml listing the templates found, "
        "profiles/default/ with nbsweep's defaults and .gitignore entries; never overwrites a file.",
    )
    init.add_argument("folder", nargs="?", type=Path, default=Path("."), help="the project folder (default: here)")
    init.add_argument(
        "--cluster",
        action="append",
        choices=["slurm", "cluster-generic"],
        default=[],
        help="also write profiles/<name>/ for `snakemake --profile profiles/<name>` (repeatable)",
    )
    status = commands.add_parser(
        "status",
        help="show which runs are up to date, stale (and why), failed or missing",
        description="Show each configured run's state and why stale runs would re-run; executes and changes nothing.",
    )
    add_configfile_option(status)
    status.add_argument(
        "--remove-orphans",
        action="store_true",
        help="delete the outputs of runs that are no longer in the config (refused while another invocation runs here)",
    )
    accept = commands.add_parser(
        "accept",
        help="mark runs' existing notebooks up to date after a change that does not matter (executes nothing)",
        description="Re-stamp the record of each chosen run's notebook with what is planned now, so a deliberate template-code "
        "or input change that changes no result reruns nothing; the original record is kept (accepted_from). Parameter and "
        "kernel changes cannot be accepted.",
    )
    accept.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="run ids (template/label), template names or notebook paths (default: every run with a notebook)",
    )
    add_configfile_option(accept)
    params = commands.add_parser(
        "params",
        help="list the parameters a template declares",
        description="List the parameters declared in a template's cell tagged `parameters`.",
    )
    params.add_argument("notebook", type=Path)
    commands.add_parser("snakefile", help="print the packaged workflow's Snakefile (for `snakemake -s` or `module:`)")
    diff = commands.add_parser(
        "diff",
        help="compare runs' executed notebooks cell by cell (exit status 1 when they differ)",
        description="Show the outputs of each template cell across runs: cells whose outputs are the same in all, and unified "
        "diffs of those that differ (images compared by content). Exit status 0 when all are the same, 1 when something differs, "
        "2 when they cannot be compared (a name that is no run, a file that is no notebook).",
    )
    diff.add_argument("runs", nargs="+", metavar="RUN", help="runs as `nbsweep status` lists them (template/label), or notebook paths")
    diff.add_argument("--previous", action="store_true", help="compare one run's previous notebook with its current one")
    diff.add_argument("--full", action="store_true", help="every line of every diff (by default, 200 lines of a cell's diff are shown)")
    add_configfile_option(diff)
    add_run_command(commands)
    add_cache_command(commands)
    return main


def add_cache_command(commands) -> None:
    cache = commands.add_parser(
        "cache",
        help="the run cache: where it is and what it holds; prune or forget entries",
        description="The run cache keeps every good execution and restores it wherever the same run is planned again "
        "(docs/cache.md). `status`: each cache's entries and size, and the hits and misses of the last invocation here; "
        "`prune`: remove old or least recently used entries; `forget`: remove the entries of runs or templates.",
    )
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_configfile_option(
        actions.add_parser("status", help="where the caches are, their entries and size, the last invocation's hits and misses")
    )
    prune = actions.add_parser("prune", help="remove entries last used long ago, or the least recently used beyond a size")
    prune.add_argument("--older-than", metavar="AGE", help="entries last used longer ago than AGE (e.g. 30d, 12h, 90m, 3600s)")
    prune.add_argument("--max-size", metavar="SIZE", help="then the least recently used until the cache holds at most SIZE (e.g. 5GB)")
    prune.add_argument("--shared", action="store_true", help="the shared caches too (there an entry's last use is when it was written)")
    add_configfile_option(prune)
    forget = actions.add_parser("forget", help="remove the entries of runs or templates from every cache")
    forget.add_argument("targets", nargs="+", metavar="TARGET", help="run ids (template/label), template names or notebook paths")
    add_configfile_option(forget)


def add_run_command(commands) -> None:
    run = commands.add_parser(
        "run",
        help="execute a template once with papermill's parameter flags, outside the config",
        description="Execute TEMPLATE once, as `papermill TEMPLATE OUT -p NAME VALUE` would, through Snakemake and the packaged "
        "workflow like a config run: its notebook is <output_dir>/<name>/<label>/<name>_<label>.ipynb, and running the same "
        "command again executes nothing. The config is not changed. Snakemake's own flags go after `--`, e.g. `-- --cores 4`.",
    )
    run.add_argument("template", metavar="TEMPLATE", help="the template (a notebook or text template), relative to the project")
    run.add_argument("output", nargs="?", help=argparse.SUPPRESS)  # papermill's OUTPUT_PATH: refused with a sentence
    pairs = {"nargs": 2, "action": "append", "default": [], "metavar": ("NAME", "VALUE")}
    run.add_argument("-p", "--parameters", **pairs, help="a parameter, typed as papermill types it (True, False, None, int, float, text)")
    run.add_argument("-r", "--parameters_raw", **pairs, help="a parameter whose value is text as given")
    run.add_argument("-y", "--parameters_yaml", action="append", default=[], metavar="YAML", help="parameters as a YAML mapping")
    run.add_argument("-f", "--parameters_file", action="append", default=[], metavar="FILE", help="parameters from a YAML file")
    run.add_argument("-b", "--parameters_base64", action="append", default=[], metavar="BASE64", help="parameters as base64-encoded YAML")
    run.add_argument("-k", "--kernel", help="the kernel to run, whatever the template's metadata says (the config's `kernel`)")
    run.add_argument("--execution-timeout", metavar="SECONDS", help="seconds each cell may take (the config's `timeout`)")
    run.add_argument("--label", help="names the run's output folder (default: made from the parameters, e.g. lr0.1_nameabc)")
    add_configfile_option(run)


def main(argv: list[str] | None = None) -> int:
    """Run one command; output cut short by its reader (``nbsweep status | head``) ends it quietly,
    as the Python docs recommend for SIGPIPE (exit status 1, no traceback)."""
    try:
        code = command(argv)
        sys.stdout.flush()  # here, so a closed pipe is seen while it can still be handled
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout at exit: into /dev/null now
        return 1
    return code


def command(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    snakemake_args: list[str] = []
    if argv[:1] == ["run"] and "--" in argv:  # nbsweep run ... -- SNAKEMAKE FLAGS
        argv, snakemake_args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    if argv[:1] == ["run"] and (reason := unsupported(argv)):
        say(refusal(reason))  # one sentence, not argparse's usage
        return 1
    args = parser().parse_args(argv)
    try:
        if args.command == "init":
            from nbsweep.cli.scaffold import init

            show("\n".join(f"nbsweep: {line}" for line in init(args.folder, tuple(args.cluster))))
            print("nbsweep: next, list your runs in config/config.yaml, then run `snakemake --cores 8`")
        elif args.command == "status":
            from nbsweep import api
            from nbsweep.cli import reports

            show(reports.status_report(api.status(args.configfile, remove_orphans=args.remove_orphans)))
        elif args.command == "accept":
            from nbsweep import api
            from nbsweep.cli import reports

            lines = reports.accept_report(api.accept(args.configfile, args.targets), args.targets)
            show("\n".join(line if line.startswith(" ") else f"nbsweep: {line}" for line in lines))
        elif args.command == "params":
            show(describe_parameters(args.notebook))
        elif args.command == "snakefile":
            from nbsweep import snakefile

            print(snakefile())
        elif args.command == "run":
            return one_off_run(args, snakemake_args)
        elif args.command == "diff":
            from nbsweep import api
            from nbsweep.cli import reports

            comparison = api.diff(args.runs, args.configfile, args.previous)
            show(reports.diff_report(comparison, args.full))
            return 0 if comparison.same else 1
        elif args.command == "cache":
            show("\n".join(f"nbsweep: {line}" for line in cache_command(args)))
    except SweepError as err:
        say(refusal(err))
        return 2 if args.command == "diff" else 1  # as diff(1): 1 says the notebooks differ
    return 0


AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(age: str) -> float:
    """Seconds from ``30d``, ``12h``, ``90m``, ``3600s`` or a number of seconds."""
    text = age.strip().lower()
    try:
        return float(text[:-1]) * AGE_UNITS[text[-1]] if text[-1:] in AGE_UNITS else float(text)
    except ValueError:
        raise SweepError(f"--older-than {age} is not an age; write e.g. 30d, 12h, 90m or 3600s") from None


def cache_command(args) -> list[str]:
    """``nbsweep cache status|prune|forget``: what ``nbsweep.api`` returns, formatted."""
    from nbsweep import api
    from nbsweep.cache.settings import parse_size
    from nbsweep.cli import reports

    if args.action == "status":
        return reports.cache_status_lines(api.cache_status(args.configfile))
    if args.action == "forget":
        return reports.cache_forget_lines(api.cache_forget(args.configfile, args.targets))
    try:
        max_size = None if args.max_size is None else parse_size(args.max_size)
    except ValueError as err:
        raise SweepError(f"--max-size {err}") from None
    older_than = None if args.older_than is None else seconds(args.older_than)
    return reports.cache_prune_lines(api.cache_prune(args.configfile, older_than, max_size, args.shared))


def one_off_run(args, snakemake_args: list[str]) -> int:
    from nbsweep import api
    from nbsweep.cli import reports

    if args.output is not None:
        raise SweepError(
            f"nbsweep run writes the notebook to <output_dir>/<name>/<label>/ itself, so it takes no output path ({args.output}); "
            "name the run with --label instead"
        )
    flags = Flags(
        args.parameters,
        args.parameters_raw,
        args.parameters_yaml,
        args.parameters_file,
        args.parameters_base64,
        args.kernel,
        args.execution_timeout,
    )
    done = api.run(args.template, flags, args.label, args.configfile, snakemake_args)
    show(f"nbsweep: {reports.one_off_line(done)}")
    return done.exit_status


def describe_parameters(path: Path) -> str:
    from nbsweep.model.parameters import declared
    from nbsweep.model.templates import read_template

    template = read_template(str(path))
    found = declared(template.nb, template.kernelspec, template.language)
    if not template.has_parameters_cell:
        return f"{path} has no cell tagged `parameters`: papermill injects parameters at the top."
    if found is None:
        return f"{path}: nbsweep cannot read {template.language} parameters cells (names are checked for Python and R)."
    if not found:
        return f"{path}: its parameters cell declares no parameters."
    width = max(len(p.name) for p in found)
    lines = [f"Parameters declared in {path}:"]
    for p in found:
        kind = "" if p.type_name == "None" else f" ({p.type_name})"
        note = f"  # {p.help}" if p.help else ""
        lines.append(f"  {p.name:<{width}} = {p.default}{kind}{note}")
    return "\n".join(lines)


def show(text: str) -> None:
    """Print a report: whatever notebooks, templates or file names put in it cannot drive the terminal."""
    print(terminal_safe(text))
