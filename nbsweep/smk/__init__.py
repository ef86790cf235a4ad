"""Everything Snakemake calls into while it plans and runs a sweep, and its console."""

from nbsweep.adapters.jsonschema_internals import skip_iri_checks

skip_iri_checks()  # first thing in Snakemake's process (the console plugin loads before the Snakefile)
