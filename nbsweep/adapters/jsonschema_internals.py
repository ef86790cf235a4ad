"""What nbsweep relies on in jsonschema beyond its documented interface.

jsonschema imports the optional ``rfc3987_syntax`` as it is imported, to check the "iri" and
"iri-reference" formats; that module builds an Earley parser on import, about 1 s of CPU. It is
installed wherever jupyter_server is (jupyter-events asks for ``jsonschema[format-nongpl]``), and
every nbsweep process imports jsonschema (nbformat and Snakemake validate with it) but checks no
such format. ``tests/unit/test_adapters.py`` fails loudly when a release changes this.
Imports nothing of nbsweep.
"""

import sys

IRI_SYNTAX = "rfc3987_syntax"


def import_jsonschema_without_iri_syntax() -> None:
    """Import jsonschema without its "iri" format checker's parser (checked with jsonschema 4.26.0:
    ``jsonschema._format`` imports it inside ``suppress(ImportError)``), unless either is imported
    already; afterwards ``import rfc3987_syntax`` works as usual. Only for nbsweep's own processes
    (Snakemake's, a job's, the warm runner's, the CLI's), never in a kernel."""
    if "jsonschema" in sys.modules or IRI_SYNTAX in sys.modules:
        return
    sys.modules[IRI_SYNTAX] = None  # a None entry makes ``import rfc3987_syntax`` raise ImportError
    try:
        import jsonschema  # noqa: F401
    finally:
        if sys.modules.get(IRI_SYNTAX, 0) is None:
            del sys.modules[IRI_SYNTAX]
