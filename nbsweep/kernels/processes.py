"""Processes of kernels: who they are (start time, pid namespace), what they started, killing them all."""

import os
from pathlib import Path


def session(sid: int | None) -> list:
    """Our processes in session ``sid`` (a kernel's: everything it started that did not ``setsid``)."""
    import psutil

    members = []
    for pid in psutil.pids() if sid else []:
        try:
            if os.getsid(pid) == sid and (proc := psutil.Process(pid)).uids().real == os.getuid():
                members.append(proc)
        except (OSError, psutil.Error):
            pass
    return members


def tree(pid: int | None) -> list:
    """Process ``pid`` and its descendants (a forked kernel's: it is their subreaper)."""
    import psutil

    try:
        root = psutil.Process(pid) if pid else None
        return [root, *root.children(recursive=True)] if root else []
    except psutil.Error:
        return []


def descendants(spare: list[int] = ()) -> list:
    """This process's descendants (orphans re-parented here included), except ``spare`` pids and theirs."""
    import psutil

    found, queue = [], psutil.Process().children()
    while queue:
        child = queue.pop()
        if child.pid in spare:
            continue
        found.append(child)
        try:
            queue += child.children()
        except psutil.Error:
            pass
    return found


def kill(processes: list) -> None:
    """SIGKILL ``processes`` and wait (briefly) until they are gone; ours are reaped."""
    import psutil

    for proc in processes:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=5)


def where() -> str:
    """The boot of this machine and the pid namespace of this process: where its pids mean something.
    A temp dir may be shared (a network filesystem, containers): pids recorded elsewhere are not checked here."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (None if there is none), to tell it
    from a later one with its pid. Read from ``/proc/<pid>/stat`` as the kernel keeps it: psutil's
    ``create_time`` adds a boot time each process reads once, which moves when the clock is
    stepped, so two processes could disagree about a live owner and remove its kernel's files."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22, starttime (the name may hold spaces)
    except (OSError, ValueError, IndexError):
        return None
