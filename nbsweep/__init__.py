"""nbsweep: run one Jupyter notebook template over many parameter sets with Snakemake.

Inside a template, ``from nbsweep import record; record(accuracy=0.91)`` stores metrics: the values
become a display output with nbsweep's own MIME type in the executed notebook, where the summary
finds them (later values of a name win). This module runs in every kernel, so it imports nothing
beyond the standard library (IPython, which every kernel has, at call time) and nothing of nbsweep.
"""

import json
import math
from pathlib import Path

__all__ = ["MIME", "record", "snakefile"]
__version__ = "0.1.0"

MIME = "application/vnd.nbsweep.metrics+json"


def plain(value, name: str):
    """A JSON value for ``value``: numpy/pandas values unwrapped, NaN and infinities as None."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(item, name) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: plain(item, f"{name}.{key}") for key, item in value.items()}
    raise TypeError(
        f"record(): metric {name!r} ({type(value).__name__}) is not a JSON value; "
        "pass numbers, strings, booleans, None, lists or dicts with string keys"
    )


def record(**metrics) -> None:
    """Store named JSON values (numbers, strings, lists, dicts) in the executed notebook."""
    if not metrics:
        return
    values = {name: plain(value, name) for name, value in metrics.items()}
    text = "nbsweep metrics: " + ", ".join(f"{name}={json.dumps(value)}" for name, value in values.items())
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:  # plain Python, outside any kernel
        print(text)
        return
    display({MIME: values, "text/plain": text}, raw=True)


def snakefile() -> str:
    """The packaged workflow's Snakefile, for ``module: snakefile: nbsweep.snakefile()`` or ``-s``."""
    return str(Path(__file__).parent / "workflow" / "Snakefile")
