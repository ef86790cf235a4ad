"""Command line: ``python -m nbsweep status [--configfile FILE ...] [--remove-orphans]``."""

import argparse
import sys
from pathlib import Path

from .errors import SweepError

# The schema of the checkout this package belongs to (the Snakefile uses the same file).
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m nbsweep", description="Inspect an nbsweep project (run it in the project folder).")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status",
        help="show which runs are up to date, stale (and why), failed or missing",
        description="Show each configured run's state and why stale runs would re-run; executes and changes nothing.",
    )
    status.add_argument("--configfile", nargs="+", type=Path, default=[], metavar="FILE", help="config files, as given to snakemake (default: config/config.yaml)")
    status.add_argument("--remove-orphans", action="store_true", help="delete the outputs of runs that are no longer in the config")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .status import status

    if not SCHEMA.is_file():
        print(f"nbsweep: the config schema {SCHEMA} is missing; reinstall nbsweep from its checkout.", file=sys.stderr)
        return 1
    try:
        print(status(args.configfile, SCHEMA, remove_orphans=args.remove_orphans))
    except SweepError as err:
        print(f"nbsweep: {err}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
