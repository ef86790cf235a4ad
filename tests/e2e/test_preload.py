"""``preload``: the warm runner's spares import a run's modules before the run is handed to them."""

import json
import shutil

import pytest
from conftest import as_read, stdout_of

from .test_warm import run_ids, stop_server

MODULES = ["xml.dom.minidom", "fractions"]  # cheap, and not imported by a fresh kernel (json and decimal are)
LOADED = "import sys\nprint('LOADED', [m for m in ['xml.dom.minidom', 'fractions'] if m in sys.modules])"
CELLS = [
    # the run's namespace and history: exactly a fresh kernel's (silent imports bind nothing, count nothing)
    "print(sorted(globals()), In, Out, get_ipython().execution_count)",
    LOADED,
    # nothing of another run: each run writes its kernel's pid, and no global is left over
    "import os\nprint('LEFT', globals().get('LEAKED'))\nLEAKED = x\nwritten = open(f'pids/{x}', 'w').write(str(os.getpid()))",  # no output: pids differ in length
    "1 + x",
]
LOADED_CELL = 3  # among the executed notebook's code cells: the template's parameters cell and papermill's come first


@pytest.fixture
def preload_project(project, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("warmtmp")))  # a server of this test's own
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    (project.root / "pids").mkdir()
    project.notebook("w", CELLS, "x = 0")
    yield project
    stop_server(project)


def configure(project, modules, runs=4):
    project.write_config(
        {"defaults": {"preload": modules}, "runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(runs))}}]}
    )


def cells(project, label):
    """(source, outputs as a reader sees them (``as_read``), execution count) of every code cell of the executed notebook."""
    nb = json.loads(project.target("w", label).read_text())
    return [(c["source"], as_read(c["outputs"]), c["execution_count"]) for c in nb["cells"] if c["cell_type"] == "code"]


def loaded(project, label):
    """What the run's LOADED cell printed, and its other outputs."""
    return cells(project, label)[LOADED_CELL][1]


def warnings_in(text, label):
    return [line for line in text.splitlines() if f"run w/{label}: could not preload" in line]


def test_a_run_on_a_preloading_spare_is_a_fresh_kernel_that_imported_the_modules(preload_project, monkeypatch):
    p = preload_project
    configure(p, MODULES)
    proc = p.snakemake("--cores", "2")
    labels = [f"r{x}" for x in range(4)]
    assert run_ids(p, "in the warm runner") == set(labels)
    preloaded = {label for label in labels if "xml.dom.minidom, fractions" in p.log("w", label)}  # forked from a zygote, or imported in
    assert preloaded, "no run was handed to a preloading spare"
    assert "could not preload" not in proc.stderr
    warm = {label: cells(p, label) for label in labels}
    pids = {(p.root / "pids" / str(x)).read_text() for x in range(4)}
    assert len(pids) == 4  # two runs never share a kernel

    shutil.rmtree(p.out)  # the same runs on fresh kernels, in-process: preload has no effect there
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    proc = p.snakemake("--cores", "2", "--config", "cache=false")  # executed again, not restored from the run cache
    assert run_ids(p, "in-process") == set(labels)
    assert "could not preload" not in proc.stderr
    for label in labels:
        fresh = cells(p, label)
        assert fresh[LOADED_CELL][1] == ({"stdout": "LOADED []\n"}, [])
        expected = "LOADED ['xml.dom.minidom', 'fractions']\n" if label in preloaded else "LOADED []\n"
        assert warm[label][LOADED_CELL][1] == ({"stdout": expected}, [])
        assert [c for i, c in enumerate(warm[label]) if i != LOADED_CELL] == [c for i, c in enumerate(fresh) if i != LOADED_CELL]
        assert [count for _, _, count in fresh] == [1, 2, 3, 4, 5, 6]  # parameters, injected parameters, then the template's
    first = warm["r0"][LOADED_CELL - 1][1][0]["stdout"]
    assert first.startswith("['In', 'Out', '_', '__', '___', '__builtin__',") and "LEAKED" not in first


def test_a_failing_preload_falls_back_to_a_fresh_kernel_with_one_warning(preload_project):
    p = preload_project
    configure(p, ["fractions", "nbsweep_no_such_module"], runs=3)
    proc = p.snakemake("--cores", "1")  # r0 starts the server (no spare yet); r1 and r2 get spares that fail to preload
    labels = ["r0", "r1", "r2"]
    assert run_ids(p, "in the warm runner") == set(labels)
    warned = {label for label in labels if warnings_in(proc.stderr, label)}
    assert warned, "no run was handed to a spare"
    for label in labels:
        assert json.loads(p.target("w", label).read_text())["metadata"]["nbsweep"]["status"] == "ok"
        assert loaded(p, label) == ({"stdout": "LOADED []\n"}, [])  # not the kernel that imported fractions
        expected = 1 if label in warned else 0
        assert len(warnings_in(proc.stderr, label)) == expected
        assert len(warnings_in(p.log("w", label), label)) == expected
    line = warnings_in(proc.stderr, sorted(warned)[0])[0]
    assert line.endswith(
        "could not preload fractions, nbsweep_no_such_module (ModuleNotFoundError: No module named 'nbsweep_no_such_module'); "
        "it runs on a fresh kernel without them"
    )
    assert "Traceback" not in proc.stderr


def test_preload_has_no_effect_and_no_error_with_the_warm_runner_off(preload_project, monkeypatch):
    p = preload_project
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    configure(p, ["fractions", "nbsweep_no_such_module"], runs=2)
    proc = p.snakemake("--cores", "2")
    assert run_ids(p, "in-process") == {"r0", "r1"}
    assert "could not preload" not in proc.stderr
    for label in ("r0", "r1"):
        assert loaded(p, label) == ({"stdout": "LOADED []\n"}, [])
        assert "on a new kernel" in p.log("w", label) and "preload" not in p.log("w", label)


def importing_template(project):
    """A template importing, before it runs anything: a module of the project's folder that notes
    what is imported already (``probe``), modules of the standard library and psutil, another
    module of the project's folder and (in a ``try:``) one that is not installed; and one module
    after it has run code (``colorsys``)."""
    (project.root / "helpers.py").write_text("HELPED = True\n")
    (project.root / "probe.py").write_text(
        "import sys\nLOADED = [m for m in ['fractions', 'xml.dom.minidom', 'helpers', 'colorsys'] if m in sys.modules]\n"
    )
    project.notebook(
        "w",
        [
            "import probe\nimport sys\nimport psutil\nimport fractions\nimport xml.dom.minidom\nimport helpers\n"
            "try:\n    import nbsweep_no_such_module\nexcept ImportError:\n    pass",
            "print('LOADED', probe.LOADED)\nprint('FORKED', any(arg.endswith('zygote.py') for arg in psutil.Process().parent().cmdline()))",
            "import colorsys\nprint('HELPED', helpers.HELPED)",
        ],
        "x = 0",
    )


def test_without_a_preload_key_the_templates_installed_imports_are_preloaded_in_forked_kernels(preload_project):
    p = preload_project
    importing_template(p)
    p.write_config({"runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(3))}}]})
    proc = p.snakemake("--cores", "2")
    labels = ["r0", "r1", "r2"]
    assert run_ids(p, "in the warm runner") == set(labels)
    assert "could not preload" not in proc.stderr
    for label in labels:
        out = stdout_of(p.target("w", label))
        assert "LOADED ['fractions', 'xml.dom.minidom']\n" in out  # not the project's own modules, nor one imported after code ran
        assert "FORKED True\n" in out and "HELPED True\n" in out
        assert (
            "on a kernel started ahead, forked from a zygote that imported the template's imports sys, psutil, fractions, xml.dom.minidom "
            "(not probe, helpers, nbsweep_no_such_module: not among the kernel's installed packages)\n"
        ) in p.log("w", label)


@pytest.mark.parametrize("preload", [False, ["fractions"]])
def test_preload_false_or_a_list_overrides_the_templates_imports(preload_project, preload):
    p = preload_project
    importing_template(p)
    p.write_config({"defaults": {"preload": preload}, "runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": [0, 1]}}]})
    p.snakemake("--cores", "2")
    assert run_ids(p, "in the warm runner") == {"r0", "r1"}
    for label in ("r0", "r1"):
        out, log = stdout_of(p.target("w", label)), p.log("w", label)
        if preload is False:
            assert "LOADED []\n" in out and "FORKED False\n" in out  # a fresh kernel, started on its own
            assert "imported" not in log and "zygote" not in log
        else:
            assert "LOADED ['fractions']\n" in out and "FORKED True\n" in out
            assert "forked from a zygote that imported fractions\n" in log


def test_preload_is_not_part_of_the_fingerprint(preload_project):
    """Results are those of a fresh kernel that imported the modules first: changing the list reruns nothing."""
    p = preload_project
    configure(p, [], runs=2)
    p.snakemake("--cores", "2")
    before = p.outputs()
    configure(p, MODULES, runs=2)
    p.snakemake("--cores", "2")
    assert p.executed(before) == set()


def test_the_preload_code_binds_no_name():
    from nbsweep.kernels import preload

    assert preload.code(("pandas", "matplotlib.pyplot")) == "__import__('pandas')\n__import__('matplotlib.pyplot')"
    namespace = {}
    exec(preload.code(("xml.dom.minidom",)), namespace)  # noqa: S102 -- the statements a spare's kernel executes
    assert set(namespace) == {"__builtins__"}


def test_preload_for_a_template_in_another_language_is_refused(project):
    import nbformat

    path = project.root / project.notebook("r", ["print(x)"], "x <- 0", kernel="ir")
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"]["language"] = "R"
    nbformat.write(nb, path)
    project.write_config(
        {"defaults": {"preload": ["pandas"]}, "runs": [{"notebook": "notebooks/r.ipynb", "label": "one", "kernel": "python3"}]}
    )
    proc = project.snakemake("-n", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "'preload' imports Python modules, but notebooks/r.ipynb is in R; remove 'preload' for it" in proc.stderr
