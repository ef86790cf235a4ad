"""nbsweep.kernels: where kernelspecs are found."""

from nbsweep.model.plan import kernel_dirs


def test_kernel_dirs_follow_jupyter_path_and_ipythondir(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipy"))
    dirs = kernel_dirs()
    assert dirs[0] == str(tmp_path / "jp" / "kernels")
    assert dirs[-1] == str(tmp_path / "ipy" / "kernels")
