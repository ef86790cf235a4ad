"""Keep a good execution in the caches its job file names, from the job's own process.

Called once the notebook, its log, its rendering and its declared outputs are in place, before the
job reports its outcome: so when Snakemake sees the job done, its entry exists. Each store gets the
objects first and the manifest last (``nbsweep.cache.stores``). Nothing here fails the run: a store
that cannot be written is one line on stderr and in the run's log.
"""

import logging
from dataclasses import replace

from nbsweep import layout
from nbsweep.cache import entries
from nbsweep.cache.keys import entry_key
from nbsweep.cache.stores import Store
from nbsweep.messages import say
from nbsweep.provenance.records import CHANGED_WHILE_READ, read_record
from nbsweep.results.executed import read_result

JOB_KEY = "cache"  # the job document's list of {url, shared, environment}: where this run's entry goes


def save(job: dict, files: layout.RunFiles, outputs: dict[str, str]) -> None:
    """Write the run's entry to every cache its job file names."""
    targets = job.get(JOB_KEY) or []
    if not targets:
        return
    try:
        record = read_record(files.target)
        if CHANGED_WHILE_READ in (record.get("inputs") or {}).values():
            return  # no plan will ever have this fingerprint
        roles = {"notebook": files.target, "log": files.log, "html": files.html}
        made, objects = entries.pack(record, roles, outputs, read_result(files.target)[1])
    except Exception as err:  # noqa: BLE001 -- the run is good whatever happens to its entry
        warn(job, "the caches", err)
        return
    for target in targets:
        try:
            key = entry_key(record["fingerprint"], target.get("environment"))  # as the notebook records it: what later plans compute
            Store(target["url"], target["shared"]).put_entry(replace(made, key=key, environment=target.get("environment")), objects)
        except Exception as err:  # noqa: BLE001 -- fsspec and its backends raise many types
            warn(job, target["url"], err)


def warn(job: dict, where: str, err: BaseException) -> None:
    line = f"run {job['run']} is done but could not be kept in the cache {where} ({type(err).__name__}: {err})"
    logging.getLogger("nbsweep").warning(line)
    say(f"nbsweep: {line}")
