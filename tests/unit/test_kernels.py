"""nbsweep.kernels: where kernelspecs are found, which modules a kernel finds installed."""

import os
import sys

from nbsweep.kernels.kernelspec import kernels_for_language
from nbsweep.kernels.site_state import installed_modules
from nbsweep.model.plan import kernel_dirs


def test_kernel_dirs_follow_jupyter_path_and_ipythondir(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipy"))
    dirs = kernel_dirs()
    assert dirs[0] == str(tmp_path / "jp" / "kernels")
    assert dirs[-1] == str(tmp_path / "ipy" / "kernels")


def test_a_template_without_a_kernel_takes_the_one_installed_for_its_language():
    installed = {"python3": "python", "venv": "python", "ir": "R", "jl1": "julia", "jl2": "julia"}
    assert kernels_for_language("python", installed) == ["python3"]  # several: Python's own
    assert kernels_for_language("python", {"venv": "python", "ir": "R"}) == ["venv"]
    assert kernels_for_language("R", installed) == ["ir"] and kernels_for_language("r", installed) == ["ir"]
    assert kernels_for_language("julia", installed) == ["jl1", "jl2"]  # several: for the user to choose
    assert kernels_for_language("scala", installed) == []


def test_installed_modules_are_those_the_kernels_interpreter_finds_in_its_stdlib_or_site_dirs(tmp_path):
    (tmp_path / "project_module.py").write_text("raise SystemExit('imported')\n")  # found, but the project's own: never imported
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "on_path.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "elsewhere")}
    asked = ("xml.dom.minidom", "project_module", "nbsweep_no_such_module", "on_path", "json", "pytest")
    assert installed_modules(sys.executable, asked, str(tmp_path), env) == ("xml.dom.minidom", "json", "pytest")
    assert installed_modules(str(tmp_path / "no-python"), asked, str(tmp_path), env) == ()
