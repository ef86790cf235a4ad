"""Fixtures: tiny projects in tmp_path driven by the real Snakefile, real snakemake and kernels."""

import compileall
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from preforked import python_m

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
# Snakemake of this interpreter, so the tests work from an unactivated virtualenv too.
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def pytest_sessionstart(session) -> None:
    """Compile nbsweep's modules once (not in xdist workers: the controller starts first). The
    suite starts thousands of processes that import them, and with PYTHONDONTWRITEBYTECODE set
    each would compile them anew (bytecode already there is read all the same)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        for package in ("nbsweep", "snakemake_logger_plugin_nbsweep"):
            compileall.compile_dir(REPO / package, quiet=2, rx=re.compile(r"[/\\]workflow[/\\]"))  # not the workflow's package data


def pytest_collection_modifyitems(items) -> None:
    """Slow tests first: with two workers, a long test started last would leave the other idle at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def make_notebook(path: Path, code: list[str], parameters: str | None = None, kernel: str = "python3") -> Path:
    """Write a template: an optional parameters cell, then one code cell per string."""
    cells = [new_markdown_cell("# test template")]
    if parameters is not None:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [new_code_cell(source) for source in code]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


class Project:
    """A scratch nbsweep project: config, templates, and helpers to run snakemake on it."""

    def __init__(self, root: Path):
        self.root = root
        self.out = root / "papermill_outputs"
        self.cache_dir = root.parent / f"{root.name}-run-cache"  # the local run cache (NBSWEEP_CACHE_DIR): never the real home's

    def notebook(self, name: str, code: list[str], parameters: str | None = None, kernel: str = "python3") -> str:
        make_notebook(self.root / "notebooks" / f"{name}.ipynb", code, parameters, kernel)
        return f"notebooks/{name}.ipynb"

    def write_config(self, config: dict | str, path: str = "config/config.yaml") -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
        return target

    def snakemake(self, *args: str, cores: int = 2, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        args = ["-s", str(SNAKEFILE), "-d", str(self.root), "--cores", str(cores), *args]
        proc = python_m("snakemake", args, self.root, self.env, timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        return proc

    def popen(self, *args: str, cores: int = 2) -> subprocess.Popen:
        cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(self.root), "--cores", str(cores), *args]
        return subprocess.Popen(cmd, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env["JUPYTER_PATH"] = str(self.root / "share" / "jupyter")
        env["NBSWEEP_CACHE_DIR"] = str(self.cache_dir)
        return env

    def nbsweep(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """``python -m nbsweep ARGS`` in the project (the ``nbsweep`` command), output captured."""
        return python_m("nbsweep", list(args), self.root, env or self.env, timeout)

    def target(self, name: str, label: str) -> Path:
        return self.out / name / label / f"{name}_{label}.ipynb"

    def record(self, name: str, label: str) -> dict:
        """The nbsweep record (``metadata.nbsweep``) of a run's target notebook."""
        return json.loads(self.target(name, label).read_text())["metadata"]["nbsweep"]

    def papermill_times(self, name: str, label: str) -> tuple[str, str]:
        """When papermill started and ended executing a run's target notebook (ISO strings)."""
        meta = json.loads(self.target(name, label).read_text())["metadata"]["papermill"]
        return meta["start_time"], meta["end_time"]

    def log(self, name: str, label: str) -> str:
        """A run's log ("" when there is none)."""
        path = self.target(name, label).with_suffix(".log")
        return path.read_text() if path.exists() else ""

    def outputs(self) -> dict[Path, int]:
        """Every file under the output folder (targets, failed copies, job files) with its mtime."""
        if not self.out.exists():
            return {}
        return {p: p.stat().st_mtime_ns for p in self.out.rglob("*") if p.is_file()}

    def executed(self, before: dict[Path, int]) -> set[str]:
        """Run ids ("name/label") whose target notebook was (re)written since ``before``."""
        after = self.outputs()
        return {
            f"{p.parent.parent.name}/{p.parent.name}"
            for p, mtime in after.items()
            if p.suffix == ".ipynb" and not p.name.startswith(".") and before.get(p) != mtime
        }

    def add_kernel(self, name: str) -> None:
        """A second kernelspec (same interpreter) visible only to this project's processes."""
        spec = self.root / "share" / "jupyter" / "kernels" / name / "kernel.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": name,
                    "language": "python",
                }
            )
        )


def stdout_of(notebook: Path) -> str:
    """All stdout text of an executed notebook."""
    nb = json.loads(notebook.read_text())
    return "".join(
        "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        for cell in nb["cells"]
        for o in cell.get("outputs", [])
        if o.get("name") == "stdout"
    )


def as_read(outputs: list[dict]) -> tuple[dict[str, str], list[dict]]:
    """A cell's outputs as a reader sees them: each stream's text joined (stream name -> text), however
    the kernel flushed it in pieces (``print('a', b)`` may arrive as two outputs under load), and the
    other outputs (results, displays, errors) in order."""
    streams: dict[str, str] = {}
    others = []
    for output in outputs:
        if output["output_type"] == "stream":
            text = output["text"]
            streams[output["name"]] = streams.get(output["name"], "") + ("".join(text) if isinstance(text, list) else text)
        else:
            others.append(output)
    return streams, others


def stream_of(outputs: list[dict], name: str = "stdout") -> str:
    """One stream's text in a cell's outputs, joined (``as_read``)."""
    return as_read(outputs)[0].get(name, "")


@pytest.fixture(autouse=True)
def private_run_cache(monkeypatch, tmp_path_factory) -> None:
    """Every process a test starts without a Project's env keeps its run cache in a folder of its own too."""
    monkeypatch.setenv("NBSWEEP_CACHE_DIR", str(tmp_path_factory.mktemp("run-cache")))


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 server (tests/s3server.py), started once per xdist worker; skips without SeaweedFS."""
    from s3server import s3_server

    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


ECHO = 'import json\nprint("ECHO" + json.dumps({k: v for k, v in globals().items() if k in PARAMS}, sort_keys=True))'


def make_echo(project: Project) -> Project:
    """Two templates: ``echo`` (prints its parameters) and ``other`` (same code, other name); three runs."""
    params = 'PARAMS = ["x", "y"]\nx = 0\ny = "a"'
    project.notebook("echo", [ECHO], params)
    project.notebook("other", [ECHO], params)
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/echo.ipynb", "label": "one", "parameters": {"x": 1}},
                {"notebook": "notebooks/echo.ipynb", "label": "two", "parameters": {"x": 2, "y": "b"}},
                {"notebook": "notebooks/other.ipynb", "label": "one", "parameters": {"x": 1}},
            ]
        }
    )
    return project


@pytest.fixture
def echo_project(project) -> Project:
    """The echo project (``make_echo``), nothing run yet."""
    return make_echo(project)


@pytest.fixture(scope="session")
def echo_built(tmp_path_factory) -> tuple[Project, subprocess.CompletedProcess]:
    """The echo project after one fresh sweep, built once per test process: (the project, that
    invocation). Read it, never change it: a test that changes it copies it (``echo_swept``)."""
    project = make_echo(Project(tmp_path_factory.mktemp("echo-built")))
    return project, project.snakemake()


@pytest.fixture
def echo_swept(echo_built, project) -> Project:
    """The echo project as ``echo_project.snakemake()`` leaves it: a copy of ``echo_built``
    (templates, config, outputs, .snakemake/, modification times) in this test's project."""
    shutil.copytree(echo_built[0].root, project.root, symlinks=True, dirs_exist_ok=True)
    return project


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(proc) -> list:
    """The processes ``proc`` started, and theirs, as far as they can be listed: one that ends while
    they are listed is left out (``children(recursive=True)`` raises for it instead)."""
    import psutil

    try:
        children = proc.children()
    except psutil.Error:
        return []
    return [found for child in children for found in (child, *descendants(child))]


def wait_for(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed; its last answer."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def executions(project: Project) -> dict[str, str]:
    """Run id ("name/label") -> the execution id its target notebook records. A run whose id
    changed executed; early cutoff puts the old notebook back (Snakemake touches it, so mtimes
    cannot tell the two apart)."""
    from nbsweep.provenance.records import read_record

    if not project.out.exists():
        return {}
    return {
        f"{p.parent.parent.name}/{p.parent.name}": read_record(p).get("execution")
        for p in project.out.glob("*/*/*.ipynb")
        if p.name == f"{p.parent.parent.name}_{p.parent.name}.ipynb"
    }


def planned_refusal(project: Project, config_files: list[str], monkeypatch) -> str:
    """The sentence Snakemake's main process ends with on a bad config (``hooks.plan_or_exit``:
    ``nbsweep: <the error>.``), planned in this process in ``project``: a SweepError, one line."""
    from nbsweep.errors import SweepError
    from nbsweep.packaged import SCHEMA
    from nbsweep.provenance.sweep import Sweep

    monkeypatch.chdir(project.root)
    monkeypatch.setenv("JUPYTER_PATH", project.env["JUPYTER_PATH"])
    with pytest.raises(SweepError) as refused:
        Sweep.load([Path(name) for name in config_files], SCHEMA)
    message = f"nbsweep: {refused.value}."
    assert "\n" not in message
    return message


def one_sentence(proc: subprocess.CompletedProcess) -> str:
    """The single `nbsweep: ` line of a refused command (and no traceback or exception anywhere)."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    assert "Exception" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nbsweep: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def servers(tmpdir) -> list:
    """Warm servers of a test: those listening in its own temp dir (their argv shows the socket path)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "nbsweep.execution.warm_server" in cmdline and any(arg.startswith(str(tmpdir)) for arg in cmdline):
            found.append(proc)
    return found
