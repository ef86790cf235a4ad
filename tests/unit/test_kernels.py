"""nbsweep.kernels: where kernelspecs are found."""

from nbsweep.kernels.kernelspec import kernels_for_language
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
