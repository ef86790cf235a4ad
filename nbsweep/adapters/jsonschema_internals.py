"""What nbsweep relies on in jsonschema beyond its documented interface.

jsonschema imports the optional ``rfc3987_syntax`` as it is imported, to check the "iri" and
"iri-reference" formats; that module builds an Earley parser on import, about 1 s of CPU. It is
installed wherever jupyter_server is (jupyter-events asks for ``jsonschema[format-nongpl]``), and
nbsweep's processes import jsonschema (nbformat and Snakemake validate with it) but check no such
format. ``tests/unit/test_adapters.py`` fails loudly when a release changes this.
Imports nothing of nbsweep.
"""

import sys

IRI_SYNTAX = "rfc3987_syntax"


def skip_iri_syntax() -> None:
    """Have jsonschema, when this process imports it, go without its "iri" format checker's parser
    (checked with jsonschema 4.26.0: ``jsonschema._format`` imports it inside ``suppress(ImportError)``),
    as if rfc3987-syntax were not installed. Only for nbsweep's own processes (Snakemake's, a job's,
    the warm runner's, the CLI's), never in a kernel; nothing changes once jsonschema is imported."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault(IRI_SYNTAX, None)  # a None entry makes ``import rfc3987_syntax`` raise ImportError
