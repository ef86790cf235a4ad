"""No second command changes a running one: commands that change files are refused while an
invocation owns the project folder, and an invocation owns its output folder, with every folder
inside and around it, so two projects never write into the same one."""

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SNAKEFILE, SNAKEMAKE, Project, one_sentence, stdout_of, wait_for

from nbsweep.smk import workdir

# A run that says it started, then waits for the test to release it (no timing involved).
HOLD = (
    "import os, time\n"
    "open(f'{gate}.{i}.started', 'w').close()\n"
    "deadline = time.monotonic() + 600\n"
    "while not os.path.exists(gate) and time.monotonic() < deadline:\n"
    "    time.sleep(0.05)\n"
    "print('HELD', i)"
)
ECHO = "print('ECHO', i)"


def gated(project: Project, gate: Path, labels: list[int], output_dir: Path | None = None) -> Project:
    """A project whose runs hold/r<i> wait for ``gate`` to exist."""
    project.notebook("hold", [HOLD], "gate = ''\ni = 0")
    config = {"runs": [{"notebook": "notebooks/hold.ipynb", "label": "r{i}", "grid": {"i": labels}, "parameters": {"gate": str(gate)}}]}
    if output_dir is not None:
        config["output_dir"] = str(output_dir)
        project.out = output_dir
    project.write_config(config)
    return project


def echo(project: Project, output_dir: Path) -> Project:
    """A project whose one run echo/e1 prints at once, into ``output_dir``."""
    project.notebook("echo", [ECHO], "i = 1")
    project.write_config({"output_dir": str(output_dir), "runs": [{"notebook": "notebooks/echo.ipynb", "label": "e1"}]})
    project.out = output_dir
    return project


def start(project: Project) -> subprocess.Popen:
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "2"]
    return subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=project.env)


def wait_until_started(gate: Path, labels: list[int], sweep: subprocess.Popen) -> None:
    started = lambda: all(Path(f"{gate}.{i}.started").exists() for i in labels)  # noqa: E731
    assert wait_for(lambda: started() or sweep.poll() is not None, 300) and started(), sweep.communicate()


def finished_ok(sweep: subprocess.Popen) -> None:
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err[-3000:]


def statuses(output_dir: Path) -> dict[str, str]:
    return {f"{r['template']}/{r['label']}": r["status"] for r in json.loads((output_dir / "summary.json").read_text())}


def test_remove_orphans_of_another_config_is_refused_while_a_sweep_runs(project, tmp_path):
    gate = tmp_path / "release"
    gated(project, gate, [1, 2])
    project.notebook("other", [ECHO], "i = 1")
    project.write_config({"runs": [{"notebook": "notebooks/other.ipynb", "label": "x"}]}, "config/other.yaml")
    sweep = start(project)
    try:
        wait_until_started(gate, [1, 2], sweep)
        folders = sorted(project.out.glob("hold/*/"))
        before = sorted(p for p in project.out.rglob("*") if p.is_file() and "summary" not in p.name and p.suffix != ".html")
        refused = project.nbsweep("status", "--remove-orphans", "--configfile", "config/other.yaml")
        assert one_sentence(refused) == (
            f"nbsweep: another nbsweep invocation (pid {sweep.pid}) is running in this folder; "
            "wait for it to finish (`snakemake --unlock` does not stop it), or stop it first."
        )
        assert [f.name for f in folders] == ["r1", "r2"] and all(p.exists() for p in before)
        shown = project.nbsweep("status", "--configfile", "config/other.yaml")  # reading still works
        assert shown.returncode == 0 and "outputs of 2 runs no longer in the config" in shown.stdout
    finally:
        gate.touch()
    finished_ok(sweep)
    assert statuses(project.out) == {"hold/r1": "ok", "hold/r2": "ok"}
    assert "HELD 1" in stdout_of(project.target("hold", "r1")) and "HELD 2" in stdout_of(project.target("hold", "r2"))

    removed = project.nbsweep("status", "--remove-orphans", "--configfile", "config/other.yaml")
    assert removed.returncode == 0 and "removed the outputs of 2 runs no longer in the config" in removed.stdout
    assert not (project.out / "hold").exists()


def test_a_second_project_writing_into_or_around_a_running_ones_output_folder_is_refused(tmp_path):
    gate, shared = tmp_path / "release", tmp_path / "all" / "shared"
    first = gated(Project(tmp_path / "first"), gate, [1], output_dir=shared)
    second = echo(Project(tmp_path / "second"), shared)
    inside = echo(Project(tmp_path / "inside"), shared / "inner")
    around = echo(Project(tmp_path / "around"), tmp_path / "all")
    sweep = start(first)
    try:
        wait_until_started(gate, [1], sweep)
        fix = "wait for it to finish, or set output_dir to another folder."
        # The same absolute output folder: refused in one sentence, by Snakemake and by accept.
        same = (
            f"nbsweep: another nbsweep invocation (pid {sweep.pid}) is writing to the output folder {shared} (or a folder inside it); {fix}"
        )
        assert one_sentence(second.snakemake(check=False)) == same
        assert one_sentence(second.nbsweep("accept")) == same
        assert second.nbsweep("status").returncode == 0  # reading still works
        # One inside it, and one around it.
        within = f"nbsweep: another nbsweep invocation (pid {sweep.pid}) is writing to {shared}, which holds the output folder {shared / 'inner'}; {fix}"
        assert one_sentence(inside.snakemake(check=False)) == within
        outer = f"nbsweep: another nbsweep invocation (pid {sweep.pid}) is writing to the output folder {tmp_path / 'all'} (or a folder inside it); {fix}"
        assert one_sentence(around.snakemake(check=False)) == outer
        # A dry-run still works, and creates no output folder.
        for project in (second, inside):
            dry = project.snakemake("-n")
            assert "echo/e1: never run" in dry.stdout
        assert not (shared / "inner").exists() and not (shared / "echo").exists()
    finally:
        gate.touch()
    finished_ok(sweep)
    notebooks = [p.relative_to(shared).as_posix() for p in shared.rglob("*.ipynb") if not p.name.startswith(".")]
    assert notebooks == ["hold/r1/hold_r1.ipynb"]
    assert "HELD 1" in stdout_of(first.target("hold", "r1")) and statuses(shared) == {"hold/r1": "ok"}

    # Once the first has finished, the second runs as usual beside its notebooks.
    second.snakemake()
    assert "ECHO 1" in stdout_of(second.target("echo", "e1")) and "HELD 1" in stdout_of(first.target("hold", "r1"))
    inside.snakemake()
    assert "ECHO 1" in stdout_of(inside.target("echo", "e1"))


@pytest.fixture
def taken():
    """Descriptors a test's lock_tree calls took; closed (their locks released) at its end."""
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def lock(folder: Path, taken: list[int], held: set | None = None) -> Path | None:
    fds, conflict = workdir.lock_tree(folder, held or set())
    taken += fds
    return conflict


def test_output_trees_conflict_when_equal_or_nested_either_way_not_side_by_side(tmp_path, taken):
    a = tmp_path / "a"
    assert lock(a, taken) is None and a.is_dir()
    assert lock(a, taken) == a
    assert lock(a / "in" / "deep", taken) == a and not (a / "in").exists()  # refused before creating anything inside
    assert lock(tmp_path, taken) == tmp_path
    assert lock(tmp_path / "b", taken) is None


def test_a_refused_claim_keeps_none_of_its_locks(tmp_path, taken):
    inner = tmp_path / "a" / "b"
    first: list[int] = []
    assert lock(inner, first) is None
    assert lock(inner / "c", taken) == inner  # it had taken tmp_path/a shared before
    for fd in first:
        os.close(fd)
    assert lock(tmp_path / "a", taken) is None


def test_folders_this_process_holds_are_skipped(tmp_path, taken):
    project = tmp_path / "project"
    project.mkdir()
    fd = os.open(project, os.O_RDONLY | os.O_DIRECTORY)
    taken.append(fd)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the project folder's owner
    assert lock(project / "out", taken) == project  # another descriptor of it conflicts with its own lock
    assert lock(project / "out", taken, held={workdir.folder_identity(fd)}) is None


@pytest.mark.parametrize("shared", [False, True])
def test_the_refusals_name_the_other_invocation_and_how_it_holds_the_folder(tmp_path, monkeypatch, shared):
    mode = "LOCK_SH" if shared else "LOCK_EX"
    code = f"import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.flock(fd, fcntl.{mode})\nprint(flush=True)\ntime.sleep(300)"
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        other.stdout.readline()
        assert workdir.holder(tmp_path) == (other.pid, shared)
        monkeypatch.chdir(tmp_path)
        running = "writes its output folder inside this folder; wait for it to finish" if shared else "is running in this folder"
        assert workdir.refusal().startswith(f"another nbsweep invocation (pid {other.pid}) {running}")
        assert workdir.output_refusal(tmp_path / "out", tmp_path) == (
            f"another nbsweep invocation (pid {other.pid}) is writing to {tmp_path}, which holds the output folder {tmp_path / 'out'}; "
            "wait for it to finish, or set output_dir to another folder"
        )
    finally:
        other.kill()
        other.wait()
