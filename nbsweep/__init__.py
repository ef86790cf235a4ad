"""nbsweep: run one Jupyter notebook template over many parameter sets with Snakemake."""

from .record import record  # for templates: standard library only, cheap to import

__all__ = ["record"]
__version__ = "0.1.0"
