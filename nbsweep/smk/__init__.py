"""Everything Snakemake calls into while it plans and runs a sweep, and its console."""
