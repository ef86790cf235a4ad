"""The one exception type nbsweep shows to users as a plain sentence, and how it quotes what users wrote."""


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
