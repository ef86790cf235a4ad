"""The one place nbsweep touches Snakemake, papermill, Jupyter and jsonschema beyond their documented interfaces."""
