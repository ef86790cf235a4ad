"""What a process inherits from the shell besides its environment: umask, rlimits, nice, CPU affinity.

A run executed in-process inherits these from Snakemake; a run forked by the warm runner inherits
the server's. The job process captures its own (``capture``) and the forked child takes them on
(``apply``) before it starts its kernel or executes anything. A child can lower but not raise a
hard limit, and (unprivileged) cannot lower its nice value: those are in ``server_part``, which
the warm server's socket name is keyed on, so a server only ever serves settings it can apply.
"""

import os
import resource

# One name per limit (RLIMIT_OFILE is RLIMIT_NOFILE under another name).
RLIMITS = {
    name: number
    for number, name in {getattr(resource, n): n for n in sorted(dir(resource), reverse=True) if n.startswith("RLIMIT_")}.items()
}


def capture() -> dict:
    """This process's umask, resource limits, nice value and CPU affinity, as JSON-able data."""
    mask = os.umask(0o022)
    os.umask(mask)
    return {
        "umask": mask,
        "rlimits": {name: list(resource.getrlimit(number)) for name, number in sorted(RLIMITS.items())},
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
    }


def server_part(setting: dict) -> dict:
    """What a forked child may be unable to change towards: hard limits and the nice value."""
    return {"hard": {name: limits[1] for name, limits in setting["rlimits"].items()}, "nice": setting["nice"]}


def apply(setting: dict) -> None:
    """Take on ``setting`` (from ``capture``); OSError or ValueError if it cannot be done exactly."""
    os.umask(setting["umask"])
    for name, (soft, hard) in setting["rlimits"].items():
        if name in RLIMITS and resource.getrlimit(RLIMITS[name]) != (soft, hard):
            resource.setrlimit(RLIMITS[name], (soft, hard))
    if os.getpriority(os.PRIO_PROCESS, 0) != setting["nice"]:
        os.setpriority(os.PRIO_PROCESS, 0, setting["nice"])
    if sorted(os.sched_getaffinity(0)) != setting["affinity"]:
        os.sched_setaffinity(0, setting["affinity"])
