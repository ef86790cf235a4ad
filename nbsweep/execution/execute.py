"""Execute one run with papermill, in this process.

The job file (written at planning time) holds the parameters as data, so nothing about them
passes through a shell. papermill executes into a hidden partial file beside the target, over a
kernel on IPC transport (``nbsweep.kernels.lifecycle``; no TCP port races between concurrent kernels). On
success the notebook is moved into place atomically; on failure it is kept as
``*.failed.ipynb`` and one line on stderr says which run failed, where and why. The outcome is
reported before the kernel is shut down. If whoever asked for the run goes away (Snakemake
killed, or the warm runner's client, which goes when Snakemake is interrupted), or this process
gets SIGTERM, SIGINT or SIGHUP, the run is aborted: its kernel and everything it started are
killed (``lifecycle.kill_all``), the kernel's runtime dir and the partial notebook are removed, the
run is marked interrupted with its last good notebook shown as the previous one, and nothing is printed.
"""

import json
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import traceback
from functools import cache
from pathlib import Path

import nbformat

from nbsweep import layout
from nbsweep.adapters.papermill_internals import register_translator, skip_remote_io_backends
from nbsweep.cache import save as run_cache
from nbsweep.execution import run_io
from nbsweep.execution.liveness import snakemake_alive
from nbsweep.files import link_or_copy
from nbsweep.kernels import lifecycle
from nbsweep.masking import mask, mask_data, secret_values
from nbsweep.messages import say
from nbsweep.model.cells import place, template_cell
from nbsweep.model.pipeline import UPSTREAM
from nbsweep.model.secrets import with_secrets
from nbsweep.provenance import kept_aside
from nbsweep.provenance.records import Provenance, recorded, stamp
from nbsweep.results.render import render_nb

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
_aborting = threading.Lock()
ABORT_WAIT = 60  # seconds a failing run waits for an abort under way to end the process
# papermill turns on nbclient's raise_on_iopub_timeout, and nbclient's iopub_timeout (4 s) bounds
# how long the output of a cell that has finished may take to arrive: a cell printing 100 MB
# outlasts it and its run would fail though every cell completed. The bound is the run's
# timeout when it has one, else this hour (output arrives at tens of MB per second; the kernel
# being alive is watched meanwhile, so a dead kernel still fails the run at once).
IOPUB_TIMEOUT_WITHOUT_RUN_TIMEOUT = 3600


@cache
def translators():
    """papermill's translator registry, with nbsweep's R translator (``nbsweep.model.parameters.r_translator``:
    it reads parameters cells, and writes strings as R reads them) registered for the names papermill
    registers its own under. Call it before executing with papermill."""
    from nbsweep.model.parameters import r_translator

    return register_translator(("R", "sparkrkernel"), r_translator())


def rehearse() -> None:
    """Do once what every run does before and around its kernel, so forks of this process start
    with those imports done: papermill's parameterising (it formats with black when installed)
    and writing, the kernel spec lookup (it imports IPython), rendering (nbconvert), listing
    a kernel's processes as it stops (psutil: 0.05 s of every run when each fork imported it),
    and the run cache's stores (fsspec)."""
    from nbsweep.kernels import processes

    processes.tree(os.getpid())
    with skip_remote_io_backends():
        import papermill

    translators()
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager()
    for name in specs.find_kernel_specs():
        specs.get_kernel_spec(name)
    cell = nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(
        cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    with tempfile.TemporaryDirectory() as folder:
        nbformat.write(nb, os.path.join(folder, "in.ipynb"))
        papermill.execute_notebook(
            os.path.join(folder, "in.ipynb"), os.path.join(folder, "out.ipynb"), parameters={"x": 1}, prepare_only=True, progress_bar=False
        )
        render_nb(nb, Path(folder, "out.html"))  # builds the exporter and compiles its templates
    import fsspec.core  # noqa: F401 -- the run cache's stores (nbsweep.cache.save: 0.1-0.3 s to import)
    import jupytext  # noqa: F401 -- text templates are converted in the runs (0.7 s to import)


def abort(files: layout.RunFiles, code: int, interrupted: bool = True) -> None:
    """Stop the run now: kill its kernel and all it started (``lifecycle.kill_all``: the kernel's
    session and every descendant of this process, which is their subreaper), remove the kernel's
    runtime dir and the partial notebook, mark an ``interrupted`` run so (``kept_aside.mark_interrupted``),
    and exit with ``code`` without a word (whoever stopped the run says so once). A second caller
    (another signal, the watcher) leaves it to the first."""
    if not _aborting.acquire(blocking=False):
        return
    files.partial.unlink(missing_ok=True)  # first, so nothing of the run is seen once its kernel has gone
    lifecycle.kill_all()
    files.partial.unlink(missing_ok=True)  # and again: papermill may have saved it meanwhile
    if interrupted:
        kept_aside.mark_interrupted(files)
    os._exit(code)


def wait_if_aborting() -> None:
    """If ``abort`` has begun, the run fails because its kernel was killed: wait for ``abort`` to
    end the process, so nothing of the run is written (it may see the kernel die before ``abort`` exits)."""
    if _aborting.locked():
        threading.Event().wait(ABORT_WAIT)


def abort_when_gone(gone, files: layout.RunFiles, reported: threading.Event) -> None:
    """Abort the run as soon as ``gone()`` says whoever asked for it has gone (unless ``reported``)."""

    def poll():
        while not gone():
            pass
        if not reported.is_set():
            abort(files, EXIT_INTERRUPTED)

    threading.Thread(target=poll, daemon=True).start()


def handle_signals(files: layout.RunFiles, outcome: list[int]) -> None:
    """Abort on SIGTERM, SIGINT and SIGHUP: exit 128 + the signal (an interrupted run), or, if the
    run's ``outcome`` is already on disk (its kernel is stopping), with that outcome, so a finished notebook stands."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: abort(files, outcome[0], interrupted=False) if outcome else abort(files, 128 + signum))


def failing_cell(nb) -> tuple[int | None, dict | None]:
    """Index (0-based, in the executed notebook) and error output of the cell that failed."""
    for index, cell in enumerate(nb.cells):
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            return index, errors[0]
        if status == "running":
            return index, None
    return None, None


def stamp_run(nb, job: dict, actual_code: str, error: dict | None, outputs: dict | None = None) -> None:
    """Store in the notebook what it was made from, so staleness survives losing all other state."""
    made = Provenance(
        actual_code, job["kernel"], job["parameters"], job["inputs"], upstream=job.get("upstream") or {}, defaults=job.get("defaults")
    )
    stamp(nb, job["run"], made, error, outputs)


def write_durably(nb, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
        fh.flush()
        os.fsync(fh.fileno())


def describe_failure(err: BaseException, nb, secrets: list[str] = ()) -> dict:
    """The failure record: exception name and value, and the failing cell in the template's terms
    (``cell_index`` among the template's cells, 0-based, and ``cell_line``, its first line), with
    the values ``secrets`` masked."""
    index, output = failing_cell(nb) if nb is not None else (None, None)
    output = output or {}
    ename = getattr(err, "ename", None) or output.get("ename") or type(err).__name__
    evalue = getattr(err, "evalue", None) or output.get("evalue") or (str(err).strip().splitlines() or [""])[0]
    cell_index, cell_line = template_cell(nb, index) if index is not None else (None, "")
    return mask_data({"ename": ename, "evalue": evalue, "cell_index": cell_index, "cell_line": cell_line}, list(secrets))


def run_secret_values(job: dict) -> list[str]:
    """The values of the run's secret environment variables, to mask in what nbsweep writes of its errors."""
    return secret_values((job.get("secrets") or {}).values())


def mark_failed_cell(nb, error: dict) -> None:
    """Give the cell that was running an error output when the kernel died or timed out."""
    index, output = failing_cell(nb)
    if index is None or output is not None:
        return
    output = nbformat.v4.new_output("error", ename=error["ename"], evalue=error["evalue"], traceback=[])
    nb.cells[index].setdefault("outputs", []).append(output)


def configure_logging(log_path: Path) -> None:
    """The run's log file; a log that cannot be written (a full disk) is skipped, not a traceback."""
    logging.raiseExceptions = False
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def execute(
    job: dict, target: Path, log_path: Path, source: run_io.RunSource | Exception, kernel: lifecycle.Kernel | None = None, report=None
) -> int:
    """Run ``job`` into ``target``; 0 if it succeeded.

    ``source``: the template and inputs as the run read them (``run_io.read_source``), or why
    they could not be read; ``kernel``: one started ahead for this run (another is started if it
    is not the job's kernel); ``report(code)`` is called once the outcome is on disk, before the
    kernel stops.
    """
    with skip_remote_io_backends():
        import papermill

    translators()

    files = layout.RunFiles(target)
    partial = files.partial
    partial.unlink(missing_ok=True)  # left by a run killed earlier
    actual_code = job["template_code"]
    code = EXIT_FAILED
    try:
        if isinstance(source, Exception):
            raise source
        # The template may have been edited since planning: record the code actually run, which
        # is the notebook hashed (never the file, which may change while the kernel starts).
        actual_code = source.code
        job["defaults"] = source.defaults  # and the defaults of that code
        ahead = kernel is not None and kernel.name == job["kernel"]
        if kernel is not None and not ahead:
            kernel.stop(now=True)
        kernel = kernel if ahead else lifecycle.start(job["kernel"])
        started = "a new kernel" if not ahead else f"a kernel started ahead{preloaded(kernel, job)}"
        logging.getLogger("nbsweep").info("run %s on %s", job["run"], started)
        parameters = {**job["parameters"], UPSTREAM: run_io.upstream_parameter(job)} if job.get("pass_upstream") else job["parameters"]
        try:
            nb = papermill.execute_notebook(
                with_secrets(source.notebook, job.get("secrets")),  # the notebook hashed, read once
                str(partial),
                parameters=parameters,
                kernel_name=job["kernel"],
                km=kernel.manager,
                language=kernel.manager.kernel_spec.language,  # for templates without kernelspec metadata
                execution_timeout=job["timeout"],
                start_timeout=300,
                progress_bar=False,
                log_output=True,
                iopub_timeout=math.ceil(job["timeout"] or IOPUB_TIMEOUT_WITHOUT_RUN_TIMEOUT),  # to nbclient (see the constant)
            )
        finally:  # whether the run succeeded or failed, say what it read
            record_inputs_read(job, source)
        nb.metadata.papermill["input_path"] = job["notebook"]  # the template's path, not a NotebookNode papermill was given
        outputs = run_io.written_outputs(job)
        stamp_run(nb, job, actual_code, None, outputs)
        write_durably(nb, partial)
        if not snakemake_alive():  # killed while the run executed: nobody waits for it, the next invocation reruns it
            abort(files, EXIT_INTERRUPTED)
        os.replace(partial, target)
        keep_as_good(files)
        run_io.keep_outputs(files, outputs)
        files.html.unlink(missing_ok=True)  # a rendering beside the notebook is always of this notebook
        if job.get("render", True):
            render_beside(nb, files.html)
        seconds = nb.metadata.get("papermill", {}).get("duration") or 0
        say(f"nbsweep: run {job['run']} ok in {seconds:.1f} s -> {target}")
        code = 0
        run_cache.save(job, files, outputs)  # before the outcome is reported: once Snakemake sees the job done, its entry exists
    except Exception as err:
        wait_if_aborting()
        report_failure(err, job, files, actual_code, log_path)
    finally:
        if report:
            report(code)
        if kernel is not None:
            kernel.stop(now=code != 0)
    return code


def record_inputs_read(job: dict, source: run_io.RunSource) -> None:
    """Make the job's inputs what the run read: their digests as it started, and for one that
    changed before it ended, ``CHANGED_WHILE_READ`` (its run stays stale; one line says so)."""
    changed = source.inputs.changed()
    for path in changed:
        line = f"run {job['run']}: input {path} changed while the run read it; the run stays stale"
        logging.getLogger("nbsweep").warning(line)
        say(f"nbsweep: {line}")
    job["inputs"] = source.inputs.recorded(changed)


def unchanged(job: dict, target: Path, log_path: Path, report) -> int:
    """End a run that early cutoff kept (``run_io.cut_off``): say so in its log and one line."""
    line = f"nbsweep: run {job['run']} unchanged (its upstream runs left the same inputs) -> {target}"
    try:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass
    say(line)
    report(0)
    return 0


def preloaded(kernel: lifecycle.Kernel, job: dict) -> str:
    """How the kernel got its ``preload`` modules (the template's imports: and which of them not), for the run's log."""
    modules = ", ".join(kernel.preloaded)
    if job.get("preload_imports"):
        modules = f"the template's imports {modules}" if modules else "ipykernel only (none of the template's imports)"
        if left := [name for name in job.get("preload") or () if name not in kernel.preloaded]:
            modules += f" (not {', '.join(left)}: not among the kernel's installed packages)"
    if kernel.forked:
        return f", forked from a zygote that imported {modules or 'ipykernel only'}"
    return f" with {modules} imported" if kernel.preloaded else ""


def report_failure(err: Exception, job: dict, files: layout.RunFiles, actual_code: str, log_path: Path) -> None:
    """Keep the executed notebook as ``files.failed`` with the error marked (and rendered), keep
    the last good notebook as ``files.previous``; say so in one line."""
    secrets = run_secret_values(job)
    details = "".join(traceback.format_exception(err))
    logging.getLogger("nbsweep").error("run %s failed\n%s", job["run"], mask(details, secrets))
    run_io.remove_outputs(job)
    nb = read_partial(files.partial)
    error = describe_failure(err, nb, secrets)
    kept = ""
    if nb is not None:
        nb.metadata.setdefault("papermill", {})["input_path"] = job["notebook"]  # not a text template's whole notebook
        mark_failed_cell(nb, error)
        stamp_run(nb, job, actual_code, error)
        try:
            write_durably(nb, files.partial)
            os.replace(files.partial, files.failed)
            kept = f"; executed notebook kept at {files.failed}"
        except OSError as write_error:  # e.g. the disk is full: no half notebook is left behind
            kept = f"; its executed notebook could not be kept ({write_error.strerror})"
        files.failed_html.unlink(missing_ok=True)
        if kept.startswith("; executed") and job.get("render", True):
            render_beside(nb, files.failed_html)
    files.partial.unlink(missing_ok=True)
    if files.good.exists():  # Snakemake removed the target when this rerun started
        os.replace(files.good, files.previous)
        if files.good_log.exists():
            os.replace(files.good_log, files.previous_log)
    if files.previous.exists():
        kept += f"; the previous good notebook is kept at {files.previous}"
    say(f"nbsweep: run {job['run']} FAILED {place(error)}: {error['ename']}: {error['evalue']}{kept}; log at {log_path}")


def read_partial(partial: Path):
    """The notebook papermill was writing, if it is whole enough to read (a full disk truncates it)."""
    try:
        return nbformat.read(partial, as_version=4)
    except (OSError, ValueError, nbformat.reader.NotJSONError):
        return None


def keep_as_good(files: layout.RunFiles) -> None:
    """After a success: link the notebook (and copy its log) where a failing rerun cannot lose
    them; the failed copy is obsolete now, and so is the good notebook it replaced, unless that
    one was made from other provenance: it is kept aside then (``nbsweep.provenance.kept_aside``)."""
    if not kept_aside.keep_aside(files, recorded(files.target)):
        for path in (files.previous, files.previous_log, files.previous_html):
            path.unlink(missing_ok=True)
    for path in (files.failed, files.failed_html, files.good):
        path.unlink(missing_ok=True)
    try:
        link_or_copy(files.target, files.good)
        if files.log.exists():
            shutil.copy2(files.log, files.good_log)
    except OSError:  # e.g. a full disk: the run is still good, only its safety copy is missing
        files.good.unlink(missing_ok=True)
        logging.getLogger("nbsweep").warning("could not keep a copy of %s", files.target, exc_info=True)


def render_beside(nb, html: Path) -> None:
    """Render the executed notebook for people; a rendering that fails is a line in the log, not a failed run."""
    try:
        render_nb(nb, html)
    except Exception:  # noqa: BLE001 -- nbconvert raises many types; the notebook itself is done
        logging.getLogger("nbsweep").exception("could not render %s", html)


def run_job(argv: list[str], gone, how: str, kernel: lifecycle.Kernel | None = None, report=None, warning: str | None = None) -> int:
    """Run ``JOB_FILE TARGET LOG``; ``gone`` tells when the requester has gone (see ``watch``).

    ``kernel`` and ``report`` as for ``execute``; ``warning``: one line about the run's kernel,
    for its stderr and log (the warm runner's spare could not preload its modules).
    """
    job_file, target, log_path = (Path(arg) for arg in argv)
    job = json.loads(job_file.read_text(encoding="utf-8"))
    present(job_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    files = layout.RunFiles(target)
    reported = threading.Event()
    outcome: list[int] = []

    def report_once(code: int) -> None:
        outcome.append(code)
        files.interrupted.unlink(missing_ok=True)  # this execution has an outcome
        reported.set()  # from now on the requester may go: the kernel still stops gracefully
        if report:
            report(code)

    handle_signals(files, outcome)
    abort_when_gone(gone, files, reported)
    run_io.settle(job)
    try:
        source = run_io.read_source(job)  # the template read once, the inputs hashed: now, as the run starts
        job["inputs"] = source.inputs.digests
    except Exception as err:  # noqa: BLE001 -- the run fails in one line, with its notebook's record (execute)
        source = err
    if not isinstance(source, Exception) and run_io.cut_off(job, layout.RunFiles(target), source):
        if kernel is not None:
            kernel.stop(now=True)
        return unchanged(job, target, log_path, report_once)
    configure_logging(log_path)
    logging.getLogger("nbsweep").info("run %s executes %s (pid %d)", job["run"], how, os.getpid())
    if warning:
        logging.getLogger("nbsweep").warning("run %s: %s", job["run"], warning)
        say(f"nbsweep: run {job['run']}: {warning}")
    return execute(job, target, log_path, source, kernel, report_once)


def present(job_file: Path) -> None:
    """Date the job file now: planning may have dated it later (``jobs.write_job_file``) so that
    Snakemake runs the job, and Snakemake fails a job whose outputs are older than an input."""
    try:
        os.utime(job_file)
    except OSError:  # e.g. an invocation's folder removed meanwhile: only the date is lost
        pass
