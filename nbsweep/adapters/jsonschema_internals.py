"""What nbsweep relies on in jsonschema beyond its documented interface: that its IRI format checks
are optional.

jsonschema (4.26.0 checked) registers the ``iri`` and ``iri-reference`` format checks, when the
optional ``rfc3987_syntax`` is installed (``jsonschema[format-nongpl]``, which jupyter-events
requires, installs it), by importing it as ``jsonschema._format`` loads, inside
``with suppress(ImportError)``. Importing ``rfc3987_syntax`` builds a Lark grammar: about 1.1 s of
CPU, a third of a Snakemake invocation with nothing to do, paid by every process that imports
nbformat (which validates notebooks with jsonschema) or reads a config. Neither nbsweep's config
schema nor nbformat's notebook schemas name a format. Imports nothing of nbsweep.
"""

import sys

IRI_BACKEND = "rfc3987_syntax"


def skip_iri_checks() -> None:
    """Import jsonschema without its IRI format checks (``IRI_BACKEND``'s import fails meanwhile),
    unless this process has imported either already; afterwards ``rfc3987_syntax`` imports as usual."""
    if "jsonschema._format" in sys.modules or IRI_BACKEND in sys.modules:
        return
    sys.modules[IRI_BACKEND] = None  # a None entry makes ``import rfc3987_syntax`` raise ImportError
    try:
        import jsonschema._format  # noqa: F401 -- jsonschema 4.26.0: its format checks are registered here, once
    finally:
        if sys.modules.get(IRI_BACKEND, 0) is None:
            del sys.modules[IRI_BACKEND]
