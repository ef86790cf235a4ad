"""Everything Snakemake calls into while it plans and runs a sweep, and its console."""

from nbsweep.adapters.jsonschema_internals import skip_iri_syntax

skip_iri_syntax()  # first thing in this process: ~1 s of CPU saved wherever jupyter_server is installed
