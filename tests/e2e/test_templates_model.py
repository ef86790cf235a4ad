"""End to end, with real snakemake and kernels: script templates, edits that don't change the
code, `nbsweep accept`, and secrets that are written nowhere."""

import fcntl
import hashlib
import json
import os
import subprocess
import time

import nbformat
from conftest import SNAKEFILE, SNAKEMAKE, one_sentence, stdout_of

PERCENT = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A script template

# %% tags=["parameters"]
n = 1

# %%
print("ANSWER", n * 21)
"""


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_percent_script_template_runs_and_reruns_only_for_code_changes(project):
    script = project.root / "notebooks" / "answer.py"
    script.parent.mkdir(parents=True)
    script.write_text(PERCENT)
    project.write_config({"runs": [{"notebook": "notebooks/answer.py", "label": "two", "parameters": {"n": 2}}]})
    project.snakemake()
    target = project.target("answer", "two")
    assert "ANSWER 42" in stdout_of(target)
    executed = nbformat.read(target, as_version=4)
    assert executed.metadata.papermill.input_path == "notebooks/answer.py"
    assert [c.cell_type for c in executed.cells] == ["markdown", "code", "code", "code"]

    before = project.outputs()
    edit(script, "# # A script template", "# # The same script, reworded")
    time.sleep(0.01)
    os.utime(script)
    project.snakemake()
    assert project.executed(before) == set()

    edit(script, "n * 21", "n * 10")
    project.snakemake()
    assert project.executed(before) == {"answer/two"} and "ANSWER 20" in stdout_of(target)


def test_an_unsupported_template_extension_is_one_sentence(project):
    (project.root / "notebooks").mkdir()
    (project.root / "notebooks" / "t.txt").write_text("x = 1")
    project.write_config({"runs": [{"notebook": "notebooks/t.txt", "label": "a"}]})
    proc = project.snakemake(check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "config/config.yaml: run #1 ('a'): notebook 'notebooks/t.txt' is neither a Jupyter notebook" in proc.stderr
    assert not project.out.exists()


CODE = ['import json\n\n\ndef area(w, h):\n    """Area of a w x h box."""\n    return w * h\n\n\nprint("AREA", json.dumps(area(x, 3)))']


def test_comments_and_reformatting_rerun_nothing_a_real_change_reruns_and_accept_keeps_outputs(project):
    template = project.root / project.notebook("box", CODE, "x = 1")
    runs = [{"notebook": "notebooks/box.ipynb", "label": f"x{x}", "parameters": {"x": x}} for x in (1, 2)]
    project.write_config({"runs": runs})
    project.snakemake()
    before = project.outputs()

    nb = nbformat.read(template, as_version=4)
    nb.cells[
        2
    ].source = "# the area of every box\nimport json\ndef area(w,h):\n    '''Area of a w x h box.'''\n    return (w*h)  # no units\nprint('AREA', json.dumps(area(x,3)))"
    nb.cells.append(nbformat.v4.new_code_cell("# nothing here yet\n"))
    nb.cells.insert(1, nbformat.v4.new_code_cell(""))
    nbformat.write(nb, template)
    project.snakemake()
    assert project.executed(before) == set()

    nb.cells[3].source = nb.cells[3].source.replace("area(w,h)", "area(width, h)").replace("(w*h)", "(width*h)")
    nbformat.write(nb, template)
    status = project.nbsweep("status")
    assert "box/x1  stale" in status.stdout and "template code changed" in status.stdout

    held = os.open(project.root, os.O_RDONLY | os.O_DIRECTORY)  # as a running invocation holds the folder
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = project.nbsweep("accept")
    finally:
        os.close(held)
    assert refused.returncode == 1 and "another nbsweep invocation" in refused.stderr
    assert "stale" in project.nbsweep("status").stdout

    mtime = project.target("box", "x1").stat().st_mtime_ns
    accepted = project.nbsweep("accept", "box/x1")
    assert accepted.returncode == 0, accepted.stderr
    assert "nbsweep: accepted 1 run as up to date without executing them:" in accepted.stdout
    assert "  box/x1: template code changed" in accepted.stdout and "box/x2" not in accepted.stdout
    assert project.target("box", "x1").stat().st_mtime_ns == mtime and project.executed(before) == set()
    status = project.nbsweep("status").stdout
    assert "box/x1  up to date (accepted)  accepted 20" in status and "executed before: template code changed" in status
    assert "box/x2  stale" in status

    accepted = project.nbsweep("accept")  # every run with a notebook: only x2 is left
    assert "accepted 1 run" in accepted.stdout and "  box/x2: template code changed" in accepted.stdout
    assert "1 already up to date" in accepted.stdout
    project.snakemake()
    assert project.executed(before) == set()
    rows = {r["label"]: r for r in json.loads((project.out / "summary.json").read_text())}
    assert rows["x1"]["status"] == "ok" and rows["x1"]["accepted"].startswith("20") and rows["x1"]["stale"] is False
    record = nbformat.read(project.target("box", "x1"), as_version=4).metadata.nbsweep
    assert record["accepted_from"]["fingerprint"] != record["fingerprint"] and "AREA 3" in stdout_of(project.target("box", "x1"))

    runs[0]["parameters"] = {"x": 5}  # a parameter change cannot be accepted
    project.write_config({"runs": runs})
    refused = project.nbsweep("accept", "box")
    assert (
        "accepted 0 runs" in refused.stdout
        and "box/x1: parameters changed: x 1 → 5; only template code and input changes" in refused.stdout
    )
    nb.cells[3].source = nb.cells[3].source.replace("(width*h)", "(width*h + 1)")
    nbformat.write(nb, template)
    project.snakemake()
    assert project.executed(before) == {"box/x1", "box/x2"}
    assert "AREA 16" in stdout_of(project.target("box", "x1"))
    assert "accepted" not in project.nbsweep("status").stdout


SECRET = "tok-8c1f2e-do-not-leak"


def test_secrets_reach_the_notebook_and_are_written_nowhere(project):
    code = ["import hashlib\nprint('DIGEST', hashlib.sha256(token.encode()).hexdigest(), 'N', n)"]
    project.notebook("api", code, 'token = ""\nn = 0')
    project.write_config(
        {
            "defaults": {"secrets": {"token": "API_TOKEN"}},
            "runs": [{"notebook": "notebooks/api.ipynb", "label": f"n{n}", "parameters": {"n": n}} for n in (1, 2)],
        }
    )
    missing = project.snakemake(check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert (
        "run #1 ('n1'): secret 'token' comes from environment variable API_TOKEN, which is not set; set it before running" in missing.stderr
    )
    assert not project.out.exists()

    env = {**project.env, "API_TOKEN": SECRET}
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "2"]
    proc = subprocess.run(cmd, cwd=project.root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    for n in (1, 2):
        assert f"DIGEST {digest} N {n}" in stdout_of(project.target("api", f"n{n}"))
    executed = nbformat.read(project.target("api", "n1"), as_version=4)
    assert 'token = __import__("os").environ["API_TOKEN"]' in executed.cells[1].source
    assert executed.metadata.papermill.parameters == {"n": 1} and executed.metadata.papermill.input_path == "notebooks/api.ipynb"

    status = project.nbsweep("status", env=env)
    rendered = project.nbsweep("params", "notebooks/api.ipynb", env=env)
    console = proc.stdout + proc.stderr + status.stdout + status.stderr + rendered.stdout
    assert SECRET not in console and "2 up to date" in status.stdout
    written = [p for folder in (project.out, project.root / ".snakemake") for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "summary.json" for p in written) and any(p.suffix == ".log" for p in written)
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []

    before = project.outputs()  # a new value of the variable reruns nothing
    proc = subprocess.run(cmd, cwd=project.root, env={**env, "API_TOKEN": "another"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and project.executed(before) == set()


def test_notebooks_of_the_older_code_digest_are_stale_once_and_accept_keeps_them(project):
    from nbsweep.model.templates import legacy_code_digest, read_template
    from nbsweep.provenance import records

    project.notebook("box", CODE, "x = 1")
    project.write_config({"runs": [{"notebook": "notebooks/box.ipynb", "label": "a", "parameters": {"x": 2}}]})
    made = records.Provenance(legacy_code_digest(read_template(str(project.root / "notebooks/box.ipynb")).nb), "python3", {"x": 2}, {})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('AREA', 6)")])
    records.stamp(nb, "box/a", made, None)
    project.target("box", "a").parent.mkdir(parents=True)
    nbformat.write(nb, project.target("box", "a"))
    status = project.nbsweep("status").stdout
    assert "box/a  stale" in status and "recorded with nbsweep's older code digest: the code is the same" in status
    accepted = project.nbsweep("accept").stdout
    assert "  box/a: recorded with nbsweep's older code digest (the code is the same)" in accepted
    assert "box/a  up to date (accepted)" in project.nbsweep("status").stdout


NO_KERNEL = PERCENT.split("# ---\n\n", 1)[1]  # the same script without its jupytext header


def test_a_percent_script_without_a_kernel_runs_on_the_kernel_of_its_language(project):
    project.add_kernel("py2")  # a second Python kernel: Python's own, python3, is taken
    script = project.root / "notebooks" / "answer.py"
    script.parent.mkdir(parents=True)
    script.write_text(NO_KERNEL)
    assert "kernelspec" not in NO_KERNEL
    project.write_config({"runs": [{"notebook": "notebooks/answer.py", "label": "two", "parameters": {"n": 2}}]})
    project.snakemake()
    assert "ANSWER 42" in stdout_of(project.target("answer", "two")) and project.record("answer", "two")["kernel"] == "python3"


def add_kernelspec(project, name: str, language: str) -> None:
    spec = project.root / "share" / "jupyter" / "kernels" / name / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"argv": ["false", "{connection_file}"], "display_name": name, "language": language}))


def test_a_script_whose_language_has_no_kernel_or_several_is_one_sentence(project):
    script = project.root / "notebooks" / "fit.jl"
    script.parent.mkdir(parents=True)
    script.write_text('# %% tags=["parameters"]\nn = 1\n\n# %%\nprintln(n)\n')
    project.write_config({"runs": [{"notebook": "notebooks/fit.jl", "label": "a"}]})
    sentence = one_sentence(project.snakemake(check=False))
    assert sentence.startswith(
        "nbsweep: config/config.yaml: run #1 ('a'): notebooks/fit.jl names no kernel and the config sets none, and no installed kernel runs julia (installed: "
    ) and sentence.endswith("; install a kernel for it or set 'kernel'.")
    add_kernelspec(project, "julia-a", "julia")
    add_kernelspec(project, "julia-b", "julia")
    assert one_sentence(project.snakemake(check=False)) == (
        "nbsweep: config/config.yaml: run #1 ('a'): notebooks/fit.jl names no kernel and the config sets none, "
        "and 2 installed kernels run julia (julia-a, julia-b); set 'kernel' to one of them."
    )
    assert not project.out.exists()
