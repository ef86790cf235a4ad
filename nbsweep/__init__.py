"""nbsweep: run one Jupyter notebook template over many parameter sets with Snakemake."""

from .record import record  # for templates: standard library only, cheap to import

__all__ = ["record", "snakefile"]
__version__ = "0.1.0"


def snakefile() -> str:
    """The packaged workflow's Snakefile, for ``module: snakefile: nbsweep.snakefile()`` or ``-s``."""
    from .packaged import SNAKEFILE

    return str(SNAKEFILE)
