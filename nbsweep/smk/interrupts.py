"""Stop the running notebooks when Snakemake is interrupted (SIGTERM or SIGINT to its pid).

Snakemake 9 lets running local jobs finish when it is interrupted: on SIGTERM its scheduler
"will exit after finishing currently running jobs", and on SIGINT (``KeyboardInterrupt``) it shuts
its thread pool down, which waits for them too (``scheduling/job_scheduler.py``,
``executors/local.py``). Only a Ctrl-C at a terminal reaches the jobs themselves, because the
terminal signals the whole foreground process group. So the Snakemake process watches for both
signals (``install``, called once while planning) and passes SIGTERM on to every running job
process; each stops its notebook within a second or so (``nbsweep.execution.job``: the kernel and all it
started are killed, the partial notebook is removed, nothing else is printed). One line says
so, and Snakemake goes on to exit as it would have, once its jobs have ended.

What this relies on, tested in tests/e2e/test_interrupts.py: the local executor starts a job as a
child process of Snakemake (``sh -c "... exec python -m nbsweep.execution.job ..."``: ``hooks.job_python``
makes the job process replace the shell), so the job processes are found among Snakemake's
descendants by their command line. The signals are seen through ``signal.set_wakeup_fd``: the
interpreter writes each signal's number there whatever Python handler is installed, so Snakemake
replacing the SIGTERM handler when its scheduler starts does not hide it. A process has one
wakeup fd; if someone else set it, nothing is installed.
"""

import signal
import socket
import sys
import threading
import time

from nbsweep.messages import say

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_SECONDS = 10  # then job processes still there are killed outright
_installed: list[socket.socket] = []
stopping = threading.Event()  # set once the jobs are being stopped: their failures are the interrupt's (for the console)


def install() -> bool:
    """Watch for SIGINT/SIGTERM in this (Snakemake's main) process; whether it was installed."""
    if _installed:
        return True
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return False
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    if previous != -1:  # someone else's: leave it be
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()
        return False
    _installed[:] = [reader, writer]
    threading.Thread(target=watch_stop_requests, args=(reader,), name="nbsweep-interrupts", daemon=True).start()
    return True


def watch_stop_requests(reader: socket.socket) -> None:
    """Wait for the first stop signal; then stop the running jobs, saying so in one line first
    (before Snakemake reports the jobs it sees fail, and its summary at exit)."""
    while data := reader.recv(64):
        if any(number in STOP_SIGNALS for number in data):
            stop_jobs(job_processes())
            return


def say_stopping(count: int) -> None:
    notebooks = "notebook" if count == 1 else "notebooks"
    say(f"nbsweep: interrupted: stopping {count} running {notebooks}; the next `snakemake` resumes")


def job_processes() -> list:
    """This process's descendants that are nbsweep job processes (``python -m nbsweep.execution.job``)."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.Error:
            continue
        if "nbsweep.execution.job" in cmdline[1:] and cmdline[cmdline.index("nbsweep.execution.job") - 1] == "-m":
            found.append(proc)
    return found


def stop_jobs(jobs: list, timeout: float = STOP_SECONDS) -> None:
    """SIGTERM the job processes ``jobs`` (saying so if there are any) and wait for them, killing
    those left after ``timeout``."""
    import psutil

    stopping.set()
    if jobs:
        say_stopping(len(jobs))
    for proc in jobs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    deadline = time.monotonic() + timeout
    while (left := [proc for proc in jobs if running(proc)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass


def running(proc) -> bool:
    """Whether ``proc`` still runs, without reaping it: Snakemake waits for its children itself
    (reaping one here would hand Snakemake a made-up exit status 0)."""
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
