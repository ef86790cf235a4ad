"""The one exception type nbsweep shows to users as a plain sentence, and how it quotes what users wrote."""

from pathlib import Path


def printable(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, ESC and other control
    characters, lone surrogates, invisible format characters) escaped as Python's repr escapes it."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def quoted(text: object) -> str:
    """A user-given string (a label, a key, a path) as a refusal quotes it: in quotes, escaped as
    Python's repr does, so that it cannot break the sentence or drive the terminal."""
    return repr(str(text))


class SweepError(Exception):
    """Bad input: the message is one human sentence naming the file, the run and the fix. Whatever
    it interpolates unquoted is kept on one line and inert (``printable``)."""

    def __init__(self, message: str):
        super().__init__(printable(message))


def read_text(path, kind: str, missing_fix: str) -> str:
    """The UTF-8 text of the ``kind`` file at ``path`` (e.g. "config file"); a problem is one
    sentence naming it, with ``missing_fix`` for a missing one."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SweepError(f"{kind} {path} does not exist; {missing_fix}") from None
    except UnicodeDecodeError:
        raise SweepError(f"{kind} {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as err:
        raise SweepError(f"cannot read {kind} {path}: {err.strerror}") from None
