"""What nbsweep relies on in papermill beyond its documented interface (or, where documented, what it
shares with every other papermill user in the process: the global translator registry).

Each function wraps one use and names the version it was checked against; ``tests/unit/test_adapters.py``
fails loudly when a release changes what one relies on. Imports nothing of nbsweep.
"""

import sys
from contextlib import contextmanager

# Optional cloud storage backends papermill tries to import (boto3 alone costs ~0.3 s per run).
# papermill 2.7.0: papermill.iorw imports each inside ``try: ... except ImportError``.
REMOTE_IO_BACKENDS = ("boto3", "botocore", "azure", "gcsfs", "pyarrow", "github")


@contextmanager
def skip_remote_io_backends():
    """Inside: papermill's imports of its cloud storage backends fail fast (runs read and write local
    files only); import papermill there. After: they import as usual (the run cache's s3fs needs botocore)."""
    blocked = [name for name in REMOTE_IO_BACKENDS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # papermill 2.7.0: a None entry makes ``import name`` raise ImportError
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def register_translator(names: tuple[str, ...], translator):
    """Register ``translator`` for kernels or languages ``names`` in papermill's process-wide translator
    registry (its documented extension API), replacing papermill's own; the registry."""
    from papermill.translators import papermill_translators  # papermill 2.7.0: PapermillTranslators.register(name, translator)

    for name in names:
        papermill_translators.register(name, translator)
    return papermill_translators


def resolve_type(value: str):
    """A ``papermill -p NAME VALUE`` value as papermill's command line types it: True, False,
    None, an int, a float, else the text itself."""
    from papermill.cli import _resolve_type  # papermill 2.7.0: private helper of papermill.cli.papermill

    return _resolve_type(value)


def yaml_loader():
    """The PyYAML loader papermill's command line reads ``-y``/``-f``/``-b`` with: safe, dates kept as text."""
    from papermill.iorw import NoDatesSafeLoader  # papermill 2.7.0: yaml.SafeLoader without the timestamp resolver

    return NoDatesSafeLoader
