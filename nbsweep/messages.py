"""Lines for the user on stderr."""

import sys


def say(line: str) -> None:
    """``line`` and its line break on stderr in one write, flushed: jobs running side by side share
    Snakemake's stderr, and ``print`` writes the text and the line break separately (two writes
    when stderr is unbuffered, e.g. under PYTHONUNBUFFERED), so another job's line could land
    between them."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def refusal(reason: object) -> str:
    """The one sentence that ends a command refusing bad input (no traceback, no usage text)."""
    return f"nbsweep: {reason}."
