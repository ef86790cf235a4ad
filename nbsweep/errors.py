"""The one exception type nbsweep shows to users as a plain sentence."""


class SweepError(Exception):
    """Bad input: the message is one human sentence naming the file, the run and the fix."""
