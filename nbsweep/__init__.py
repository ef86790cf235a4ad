"""nbsweep: run one Jupyter notebook template over many parameter sets with Snakemake."""

__version__ = "0.1.0"
