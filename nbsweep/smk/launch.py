"""Start Snakemake on one run's target, for ``nbsweep run``: the project's workflow and profile,
the project's config files plus the one-off run's entry, and the user's own Snakemake flags.

The invocation is marked as a one-off run's (``ONE_OFF`` in its environment): it writes no
summary or index.html, which describe the config's runs (``nbsweep.smk.hooks``).
"""

import os
import subprocess
import sys
from pathlib import Path

from nbsweep.errors import SweepError
from nbsweep.packaged import SNAKEFILE

ONE_OFF = "NBSWEEP_ONE_OFF"  # the run id of the one-off run an invocation was started for
# Where Snakemake looks for a Snakefile when given none (snakemake 9: SNAKEFILE_CHOICES).
PROJECT_SNAKEFILES = ("Snakefile", "snakefile", "workflow/Snakefile", "workflow/snakefile")
CORES_FLAGS = ("-c", "--cores", "-j", "--jobs", "--profile")
OWN_FLAGS = ("--configfile", "--configfiles")
SETTINGS_FLAGS = ("-C", "--config")  # would change what nbsweep run planned before starting Snakemake


def command(target: Path, config_files: list[Path], snakemake_args: list[str]) -> list[str]:
    """The snakemake command line (no shell): the project's Snakefile, else the packaged one; all
    cores unless the user's flags or profile say otherwise; the user's flags as given, except
    those that would make Snakemake plan other config than nbsweep run did (SweepError)."""
    for arg in snakemake_args:
        flag = arg.split("=", 1)[0]
        if flag in OWN_FLAGS:
            raise SweepError(f"nbsweep run: give {flag} before --, as nbsweep run's own option, so that it plans with the same files")
        if flag in SETTINGS_FLAGS:
            raise SweepError(
                f"nbsweep run cannot pass {flag} on to Snakemake, as it plans the run before; give parameters with -p or -y, "
                "and other settings in a config file given with --configfile"
            )
    cmd = [sys.executable, "-m", "snakemake", str(target)]
    if not any(Path(name).is_file() for name in PROJECT_SNAKEFILES) and not given(snakemake_args, ("-s", "--snakefile")):
        cmd += ["--snakefile", str(SNAKEFILE)]
    if not given(snakemake_args, CORES_FLAGS):
        cmd += ["--cores", "all"]
    return [*cmd, "--configfile", *map(str, config_files), *snakemake_args]


def given(args: list[str], flags: tuple[str, ...]) -> bool:
    """Whether one of ``flags`` is among ``args`` (also as ``--flag=value`` or ``-c4``)."""
    return any(arg.split("=", 1)[0] in flags or any(arg.startswith(flag) and not flag.startswith("--") for flag in flags) for arg in args)


def run(cmd: list[str], run_id: str) -> int:
    """Run Snakemake in the foreground, its output going to this terminal; its exit status.
    Ctrl-C reaches Snakemake too, which stops the run safely: this process only waits for it."""
    process = subprocess.Popen(cmd, env={**os.environ, ONE_OFF: run_id})
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue
