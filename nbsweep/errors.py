"""The one exception type nbsweep shows to users as a plain sentence."""


class SweepError(Exception):
    """Bad input: the message is one human sentence naming the file, the run and the fix."""


# What Snakemake says when it cannot read a --configfile (before any workflow code runs).
CONFIGFILE_ERRORS = (
    "Config file is not valid JSON or YAML",
    "Config file must be given as JSON or YAML with keys at top level",
    "UnicodeDecodeError",
)
