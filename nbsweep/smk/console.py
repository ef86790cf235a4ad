"""nbsweep's console: Snakemake's log events as one line per finished run and a progress line.

This is the log handler of the Snakemake logger plugin ``snakemake_logger_plugin_nbsweep``
(``logger: [nbsweep]`` in the workflow profile). Each run's job prints its own line
(``nbsweep: run X ok in ...``); this handler drops Snakemake's job blocks, shell commands and
the error blocks that repeat them, counts the runs as they finish, shows the progress with an
ETA (a line pinned to the bottom of a terminal, plain lines every few seconds otherwise) and
has index.html rewritten while the sweep goes on (``nbsweep.smk.main_process.refresh``). It notes each failed
run for the results (``nbsweep.results.failures``: a full disk may leave no notebook saying so), and
masks the values of the sweep's secrets in its lines (``nbsweep.masking``).

A dry-run (``-n``) lists each run that would execute with why, in nbsweep's words (decided by
``nbsweep.provenance.state.execution_reason`` while the DAG is built, ``nbsweep.smk.hooks``), then
their count. An interruption counts the runs it stopped as interrupted, and once they have ended
says what was done. Snakemake's own output flags (``--verbose``, ``--printshellcmds``,
``--quiet``, ``--debug-dag``) give Snakemake's usual output instead, as another ``--logger`` does.
"""

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from nbsweep.adapters import snakemake_internals as smk
from nbsweep.masking import mask
from nbsweep.messages import terminal_safe
from nbsweep.model.rule_names import is_run_rule, rule_run
from nbsweep.results import failures
from nbsweep.smk import interrupts, main_process

QUIET_EVENTS = {
    LogEvent.WORKFLOW_STARTED,
    LogEvent.JOB_STARTED,
    LogEvent.SHELLCMD,
    LogEvent.GROUP_INFO,
    LogEvent.PROGRESS,
    LogEvent.RESOURCES_INFO,
    LogEvent.DEBUG_DAG,
    LogEvent.RULEGRAPH,
}


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    progress_every: float = field(
        default=10.0,
        metadata={
            "help": "Seconds between plain progress lines when stderr is not a terminal (0: after every run).",
            "env_var": False,
            "type": float,
        },
    )
    refresh_every: float = field(
        default=5.0,
        metadata={
            "help": "Least seconds between rewrites of index.html while the sweep runs (0: after every run).",
            "env_var": False,
            "type": float,
        },
    )


def clock(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Progress:
    """Counts of the runs this invocation executes, and the time they take."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    interrupted: int = 0
    running: set = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.interrupted

    @property
    def counts(self) -> str:
        """The counts as the closing line says them: ``2 ok, 1 failed, 3 interrupted``."""
        return ", ".join(
            f"{n} {word}" for n, word in ((self.ok, "ok"), (self.failed, "failed"), (self.interrupted, "interrupted")) if n or word == "ok"
        )

    def line(self, now: float) -> str:
        elapsed = now - self.started
        if interrupts.stopping.is_set():  # the sweep was interrupted (not a run whose runner stopped)
            left = self.total - self.done - len(self.running)
            return f"nbsweep: interrupted after {clock(elapsed)}: {self.counts}" + (f", {left} not started" if left > 0 else "")
        text = f"nbsweep: {self.done}/{self.total} runs done ({self.counts}), {len(self.running)} running, {clock(elapsed)} elapsed"
        if self.done and self.done < self.total:
            text += f", ETA {clock(elapsed / self.done * (self.total - self.done))}"
        return text


class BottomLine:
    """A status line pinned to the terminal's last row: the rows above scroll (Snakemake's
    messages and the lines the jobs print themselves), the last one is rewritten in place."""

    def __init__(self, stream):
        self.stream = stream
        self.rows = 0

    def show(self, text: str) -> None:
        try:
            columns, rows = os.get_terminal_size(self.stream.fileno())
        except (OSError, ValueError):
            columns, rows = 0, 0
        columns, rows = columns or 80, rows or 24
        if rows != self.rows:  # first line, or the terminal was resized: (re)reserve the last row
            self.stream.write(f"\n\0337\033[1;{rows - 1}r\0338\033[1A")
            self.rows = rows
        self.stream.write(f"\0337\033[{rows};1H\033[2K{text[: columns - 1]}\0338")
        self.stream.flush()

    def close(self) -> None:
        if self.rows:
            self.stream.write(f"\0337\033[{self.rows};1H\033[2K\033[r\0338")
            self.stream.flush()
            self.rows = 0


def full_output_wanted(settings) -> bool:
    return bool(settings.verbose or settings.printshellcmds or settings.debug_dag or settings.quiet)


def runs(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


class LogHandler(LogHandlerBase):
    """The quiet console (see the module docstring)."""

    def __post_init__(self) -> None:
        common = self.common_settings
        self.options = self.settings if isinstance(self.settings, LogHandlerSettings) else LogHandlerSettings()
        self.stream = sys.stdout if common.stdout else sys.stderr
        self.full = smk.default_console_handler(common, self.stream) if full_output_wanted(common) else None
        self.dryrun = bool(common.dryrun)
        self.listed: dict[tuple[str, str], str] = {}  # in a dry-run: each run that would execute -> its line
        self.progress = Progress()
        self.jobs: dict[int, dict] = {}  # jobid -> what its JOB_INFO said
        self.counted: set[int] = set()
        self.held: list[logging.LogRecord] = []  # job failures' exceptions, each awaiting its error block
        isatty = getattr(self.stream, "isatty", None)
        self.bottom = BottomLine(self.stream) if isatty and isatty() and os.environ.get("TERM") != "dumb" else None
        self.wall_start = time.time()
        self.last_line = self.last_refresh = time.monotonic()
        self.refresh_cost = 0.0
        self.refreshed_runs = 0

    writes_to_stream = True
    writes_to_file = False
    has_filter = True
    has_formatter = True
    needs_rulegraph = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno >= logging.ERROR and smk.is_configfile_error(record.getMessage()):
                # Snakemake read a --configfile before any workflow code ran, and names no file.
                from nbsweep.model.config import configfile_problem  # jsonschema and ruamel: only when needed

                problem = configfile_problem()
                if problem:
                    self.write(f"nbsweep: {problem.rstrip('.')}.")
                    return
            if self.full is not None:
                self.full.handle(record)
            else:
                self.quiet(record)
        except Exception:  # noqa: BLE001 -- the console must never take the sweep down
            self.handleError(record)

    def quiet(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event in (LogEvent.JOB_ERROR, LogEvent.GROUP_ERROR) and self.held:
            self.held.pop(0)  # said by the failure's own line (other jobs' records may come between)
        if event == LogEvent.ERROR and smk.announces_job_failure(record):
            self.held.append(record)
        elif event == LogEvent.RUN_INFO:
            self.progress.total = sum(count for rule, count in getattr(record, "stats", {}).items() if is_run_rule(rule))
            self.progress.started = self.last_line = time.monotonic()
            if self.progress.total and self.bottom is None and not self.dryrun:
                self.write(f"nbsweep: {runs(self.progress.total)} to execute")
        elif event == LogEvent.JOB_INFO:
            self.jobs[record.jobid] = {key: getattr(record, key, None) for key in ("rule_name", "wildcards", "local", "output", "log")}
            if self.dryrun:
                self.explain(self.jobs[record.jobid])
            elif self.is_run(record.jobid):
                self.progress.running.add(record.jobid)
                if self.bottom is not None:
                    self.bottom.show(self.progress.line(time.monotonic()))
        elif event == LogEvent.JOB_FINISHED:
            self.finished(record.job_id, ok=True)
        elif event == LogEvent.JOB_ERROR:
            self.failed(record.jobid, record.rule_name, record.log)
        elif event == LogEvent.GROUP_ERROR:
            for info in getattr(record, "job_error_info", []):
                self.failed(info["jobid"], info["rule_name"], info["log"])
        elif event in QUIET_EVENTS:
            pass
        elif record.levelno >= logging.WARNING or self.said_by_plugin(record) or kept_info(record.getMessage()):
            self.write(record.getMessage())

    def explain(self, info: dict) -> None:
        """In a dry-run: note the line of a run that would execute, saying why (``list_runs`` prints them)."""
        if is_run_rule(info.get("rule_name")):
            reason = main_process.MAIN.get("reasons", {}).get(run_key(info), "Snakemake schedules it (see --verbose)")
            self.listed[run_key(info)] = f"{run_name(info)}: {reason}"

    def list_runs(self) -> None:
        """In a dry-run: the runs that would execute, in config order, each with why, then their count (once)."""
        sweep = main_process.MAIN.get("sweep")
        order = {key: position for position, key in enumerate(sweep.runs if sweep else ())}
        for key in sorted(self.listed, key=lambda key: order.get(key, len(order))):
            self.write(self.listed[key])
        self.write(f"nbsweep: {runs(len(self.listed))} would execute (Snakemake's reasons: --verbose)")
        self.listed.clear()

    def is_run(self, jobid: int) -> bool:
        return is_run_rule(self.jobs.get(jobid, {}).get("rule_name"))

    @staticmethod
    def said_by_plugin(record: logging.LogRecord) -> bool:
        """Info from Snakemake's plugins (e.g. an executor's "submitted" lines) is kept; Snakemake's own is not."""
        return not smk.logged_by_snakemake(record.pathname)

    def finished(self, jobid: int, ok: bool, interrupted: bool = False) -> None:
        if not self.is_run(jobid) or jobid in self.counted:
            return
        self.counted.add(jobid)
        self.progress.running.discard(jobid)
        if ok:
            self.progress.ok += 1
            if not self.jobs[jobid]["local"]:  # jobs elsewhere print their line there
                self.write(f"nbsweep: run {run_name(self.jobs[jobid])} ok -> {self.jobs[jobid]['output'][0]}")
        elif interrupted or interrupts.stopping.is_set():
            self.progress.interrupted += 1
        else:
            self.progress.failed += 1
        if not interrupts.stopping.is_set():
            self.show_progress()
        elif not self.progress.running:  # every run stopped has ended: say what was done, once
            self.write(self.progress.line(time.monotonic()))
        self.maybe_refresh()

    def failed(self, jobid: int, rule: str, logs: list) -> None:
        info = self.jobs.get(jobid, {"rule_name": rule, "wildcards": {}, "local": True, "output": [], "log": logs})
        where = f"; log at {', '.join(logs)}" if logs else ""
        if not is_run_rule(rule):
            shown = ", ".join(f"{k}={v}" for k, v in (info.get("wildcards") or {}).items())
            self.write(f"nbsweep: job {rule}{f' ({shown})' if shown else ''} failed{where}")
        elif interrupts.stopping.is_set():
            pass  # stopped on purpose: the interruption was announced once
        elif self.marked_since_start(info, "interrupted"):  # the warm runner stopped under it (its job said so)
            self.write(f"nbsweep: run {run_name(info)} interrupted{where}")
            self.finished(jobid, ok=False, interrupted=True)
            return
        else:
            name, label = run_key(info)
            failures.note_job_failure(name, label, (logs or [None])[0])
            if not info["local"] or not self.marked_since_start(info, "failed"):
                self.write(f"nbsweep: run {name}/{label} FAILED{where}")
        self.finished(jobid, ok=False)

    def marked_since_start(self, info: dict, outcome: str) -> bool:
        """Whether the run's job left its ``failed`` notebook (and so printed why it failed) or its
        ``interrupted`` mark in this sweep."""
        if not info["output"]:
            return False
        from nbsweep.layout import RunFiles

        marked = getattr(RunFiles(Path(info["output"][0])), outcome)
        try:
            return marked.stat().st_mtime >= self.wall_start
        except OSError:
            return False

    def show_progress(self) -> None:
        if not self.progress.total:
            return
        now = time.monotonic()
        if self.bottom is not None:
            self.bottom.show(self.progress.line(now))
        elif self.progress.done >= self.progress.total:
            pass  # the last run's own line, then the closing line, say it
        elif now - self.last_line >= self.options.progress_every:
            self.write(self.progress.line(now))
            self.last_line = now

    def maybe_refresh(self) -> None:
        """Rewrite the sweep's results now and then (at most every refresh_every seconds, and
        never spending more than a fifth of the time on it)."""
        now = time.monotonic()
        if self.progress.done == self.refreshed_runs or now - self.last_refresh < max(self.options.refresh_every, 4 * self.refresh_cost):
            return

        main_process.refresh()
        self.refreshed_runs = self.progress.done
        self.last_refresh = time.monotonic()
        self.refresh_cost = self.last_refresh - now

    def write(self, text: str) -> None:
        """Write one line, with the values of the sweep's secrets masked (``nbsweep.masking``) and
        nothing that could drive the terminal."""
        self.stream.write(terminal_safe(mask(text, main_process.MAIN.get("secrets", []))) + "\n")  # secrets: known once planned
        self.stream.flush()

    def close(self) -> None:
        if self.dryrun and self.listed:
            self.list_runs()
        for record in self.held:  # no error block came for it: say it
            self.write(record.getMessage())
        self.held.clear()
        if self.bottom is not None:
            self.bottom.close()
        super().close()


def run_key(info: dict) -> tuple[str, str]:
    wildcards = info.get("wildcards") or {}
    return rule_run(info.get("rule_name") or "") or (wildcards.get("notebook"), wildcards.get("label"))


def run_name(info: dict) -> str:
    return "/".join(map(str, run_key(info)))


def kept_info(message: str) -> bool:
    """Snakemake's own info lines that a person needs: nothing to do, and a job being retried."""
    return message == smk.nothing_to_be_done_message() or smk.is_restart_message(message)
