"""The one place nbsweep touches Snakemake, papermill and Jupyter beyond their documented interfaces."""
