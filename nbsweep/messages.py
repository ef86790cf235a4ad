"""Lines for the user on stderr."""

import re
import sys

_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # SGR: colours and weights, which say nothing
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tabs and line breaks aside


def terminal_safe(text: str) -> str:
    """``text`` as a terminal may show it: colour codes dropped, any other control character
    written out (``\\x1b``), so that nothing a notebook printed or raised can drive the terminal."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", _COLOUR.sub("", text))


def say(line: str) -> None:
    """``line`` and its line break on stderr in one write, flushed: jobs running side by side share
    Snakemake's stderr, and ``print`` writes the text and the line break separately (two writes
    when stderr is unbuffered, e.g. under PYTHONUNBUFFERED), so another job's line could land
    between them."""
    sys.stderr.write(f"{terminal_safe(line)}\n")
    sys.stderr.flush()


def refusal(reason: object) -> str:
    """The one sentence that ends a command refusing bad input (no traceback, no usage text)."""
    return f"nbsweep: {reason}."
