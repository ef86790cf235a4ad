"""A run's Snakemake resources, read at planning time exactly as Snakemake will read them.

Snakemake's standard resources are ``mem``/``disk`` (megabytes, or a size such as "4GB"),
``mem_mb``/``disk_mb``/``mem_mib``/``disk_mib`` (numbers) and ``runtime`` (minutes, or a duration
such as "2h"). Each is converted to Snakemake's canonical ``mem_mb``, ``disk_mb`` or ``runtime``
number by ``snakemake.resources.Resource``, the class Snakemake applies to every job's
resources: a value it cannot read is refused before anything runs (instead of failing mid-DAG),
and a run's ``mem: 4GB`` replaces the default ``mem_mb`` instead of clashing with it.
"""

import math

from nbsweep.adapters.snakemake_internals import resource_reading
from nbsweep.errors import SweepError

SIZED = ("mem", "disk")
STANDARD = {f"{base}{suffix}": base for base in SIZED for suffix in ("", "_mb", "_mib")} | {"runtime": "runtime"}


def how_to_write(name: str) -> str:
    base = STANDARD[name]
    if base == "runtime":
        return "give minutes (e.g. 90) or a duration such as '2h'"
    if name == base:
        return "give megabytes (e.g. 4000) or a size such as '4GB'"
    return f"give a number (e.g. {name}: 4000), or a size as {base}: '4GB'"


def standard_resources(resources: dict, where: str) -> dict:
    """``resources`` with Snakemake's standard ones in canonical form; unknown names pass through."""
    canonical: dict = {}
    given: dict[str, str] = {}
    for name, value in resources.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise SweepError(f"{where}: resource {name!r} is {value}; give a finite number")
        if name not in STANDARD:
            canonical[name] = value
            continue
        base = STANDARD[name]
        if base in given:
            raise SweepError(f"{where}: resources set both {given[base]!r} and {name!r}, which Snakemake reads as one; keep one of them")
        given[base] = name
        if isinstance(value, (int, float)) and value < 0:
            raise SweepError(f"{where}: resource {name!r} is negative ({value}); {how_to_write(name)}")
        try:
            key, number = resource_reading(name, value, sized=base in SIZED)
        except ValueError:
            raise SweepError(f"{where}: resource {name}: {value!r} is not something Snakemake can read; {how_to_write(name)}") from None
        canonical[key] = number
    return canonical
