"""MLflow tracking (config key `mlflow:`) against a real local MLflow store (sqlite in tmp_path)."""

import json
import os
import subprocess

import pytest

mlflow = pytest.importorskip("mlflow")

from conftest import SNAKEFILE, SNAKEMAKE  # noqa: E402 -- after the importorskip
from mlflow.tracking import MlflowClient  # noqa: E402

from nbsweep.model import mlflow_settings  # noqa: E402

CODE = ["from nbsweep import record\nif x == 0:\n    raise ValueError('x must not be zero')\nrecord(inverse=1 / x, name='calc')"]


def tracked_project(project, xs=(0, 1, 2), **mlflow_settings):
    project.notebook("calc", CODE, "x = 1\nscale = 2")
    settings = {"tracking_uri": f"sqlite:///{project.root / 'store.db'}", "experiment": "calc-sweep", **mlflow_settings}
    project.write_config({"mlflow": settings, "runs": [{"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": list(xs)}}]})
    return project


def project_config(project) -> dict:
    import yaml

    return yaml.safe_load((project.root / "config/config.yaml").read_text())


def logged(project) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'store.db'}")
    experiment = client.get_experiment_by_name("calc-sweep")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_every_execution_is_one_mlflow_run_and_a_noop_logs_nothing(project):
    tracked_project(project)
    proc = project.snakemake(check=False)
    assert proc.returncode != 0 and "could not log" not in proc.stderr
    runs = {run.data.tags["nbsweep.run"]: run for run in logged(project)}
    assert sorted(runs) == ["calc/x0", "calc/x1", "calc/x2"]
    ok, failed = runs["calc/x2"], runs["calc/x0"]
    assert ok.info.status == "FINISHED" and failed.info.status == "FAILED"
    assert ok.data.tags["nbsweep.template"] == "calc" and ok.data.tags["nbsweep.label"] == "x2"
    assert len(ok.data.tags["nbsweep.fingerprint"]) >= 16
    assert ok.data.params == {"x": "2", "scale": "2"}  # effective parameters: the template's default included
    assert ok.data.metrics == {"inverse": 0.5}  # numbers only: the recorded name is no metric
    assert failed.data.metrics == {} and "ValueError" in failed.data.tags["nbsweep.error"]
    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'store.db'}")
    assert "calc_x2.ipynb" in [a.path for a in client.list_artifacts(ok.info.run_id)]
    assert "calc_x0.failed.ipynb" in [a.path for a in client.list_artifacts(failed.info.run_id)]

    project.snakemake(check=False)  # only the failed run executes again
    assert sorted(run.data.tags["nbsweep.run"] for run in logged(project)) == ["calc/x0", "calc/x0", "calc/x1", "calc/x2"]

    tracked_project(project, xs=(4, 1, 2))
    project.snakemake()  # x4 is new; x1, x2 are current: nothing else executes
    project.snakemake()  # a no-op
    names = sorted(run.data.tags["nbsweep.run"] for run in logged(project))
    assert names == ["calc/x0", "calc/x0", "calc/x1", "calc/x2", "calc/x4"]


def test_a_run_restored_from_the_run_cache_is_logged_once_linked_to_its_execution(project):
    import shutil

    tracked_project(project, xs=(1, 2))
    project.snakemake()
    executed = {run.data.tags["nbsweep.run"]: run.data.tags["nbsweep.execution"] for run in logged(project)}
    shutil.rmtree(project.out)
    assert "2 runs restored from cache" in project.snakemake().stderr
    project.snakemake()  # a no-op: nothing more is logged
    restored = [run for run in logged(project) if run.data.tags.get("nbsweep.restored_from_cache") == "true"]
    assert {run.data.tags["nbsweep.run"]: run.data.tags["nbsweep.execution"] for run in restored} == executed
    assert len(logged(project)) == 4


def test_a_changed_run_adds_a_new_mlflow_run_and_keeps_the_old_one(project):
    tracked_project(project)
    config = {**project_config(project), "runs": [{"notebook": "notebooks/calc.ipynb", "label": "one", "parameters": {"x": 1}}]}
    project.write_config(config)
    project.snakemake()
    config["runs"][0]["parameters"]["scale"] = 3  # same run, new parameters: it executes again
    project.write_config(config)
    proc = project.snakemake()
    assert "nbsweep: run calc/one ok" in proc.stderr
    runs = sorted(logged(project), key=lambda run: run.info.start_time)
    assert [run.data.tags["nbsweep.run"] for run in runs] == ["calc/one", "calc/one"]
    assert [run.data.params["scale"] for run in runs] == ["2", "3"]
    assert runs[0].data.tags["nbsweep.fingerprint"] != runs[1].data.tags["nbsweep.fingerprint"]
    assert "mlflow" not in proc.stderr.lower()  # MLflow's own notes stay out of the console
    # Back to the first parameters: the notebook kept aside is put back, not executed, and not logged again.
    del config["runs"][0]["parameters"]["scale"]
    project.write_config(config)
    assert "were put back without executing" in project.snakemake().stderr
    assert len(logged(project)) == 2


def test_an_unreachable_tracking_server_is_one_warning_and_the_sweep_succeeds(project):
    tracked_project(project, xs=(1, 2), tracking_uri="http://127.0.0.1:9")
    proc = project.snakemake()
    warnings = [line for line in proc.stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and warnings[0].startswith("nbsweep: could not log to MLflow at http://127.0.0.1:9"), proc.stderr
    assert project.target("calc", "x1").exists() and project.target("calc", "x2").exists()
    assert (project.out / "summary.csv").exists() and "nbsweep: 2 runs (2 ok)" in proc.stderr


def test_mlflow_not_installed_is_one_line_naming_the_extra(project, tmp_path):
    hidden = tmp_path / "no-mlflow" / "mlflow"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('mlflow hidden by the test')\n")
    tracked_project(project, xs=(1,))
    env = {**project.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(hidden.parent), os.environ.get("PYTHONPATH")]))}
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "1"]
    proc = subprocess.run(cmd, check=False, cwd=project.root, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "mlflow" in line.lower()]
    assert lines == [line for line in lines if "nbsweep[mlflow]" in line] and len(lines) == 1, proc.stderr


def test_settings_defaults(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert mlflow_settings.settings({"runs": []}) is None
    assert mlflow_settings.settings({"mlflow": None}) == mlflow_settings.Settings("sqlite:///mlflow.db", "nbsweep")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    assert mlflow_settings.settings({"mlflow": {}}) == mlflow_settings.Settings("http://tracking:5000", "from-env")
    assert mlflow_settings.settings({"mlflow": {"tracking_uri": "sqlite:///x.db", "experiment": "e"}}) == mlflow_settings.Settings(
        "sqlite:///x.db", "e"
    )


SECRET = "tok-5ecret-Value-0451"


def test_a_secret_quoted_by_a_notebook_is_masked_in_everything_nbsweep_writes(project, monkeypatch):
    """The exception text, a recorded metric and the notebooks logged to MLflow quote the secret's value:
    summary.csv/json, index.html, the console and the MLflow store say ``***`` instead."""
    monkeypatch.setenv("API_TOKEN", SECRET)
    code = "from nbsweep import record\nrecord(token_seen=token, score=1.5)\nif fail:\n    raise ValueError(f'token {token} was refused')"
    project.notebook("api", [code], "token = ''\nfail = False")
    project.write_config(
        {
            "mlflow": {"tracking_uri": f"sqlite:///{project.root / 'store.db'}", "experiment": "calc-sweep"},
            "defaults": {"secrets": {"token": "API_TOKEN"}},
            "runs": [{"notebook": "notebooks/api.ipynb", "label": "fail_{fail}", "grid": {"fail": [True, False]}}],
        }
    )
    proc = project.snakemake(check=False)
    assert proc.returncode != 0 and "api/fail_True FAILED" in proc.stderr
    rows = {r["label"]: r for r in json.loads((project.out / "summary.json").read_text())}  # "***": the kernel had the value
    assert rows["fail_True"]["error_message"] == "token *** was refused" and rows["fail_False"]["metrics.token_seen"] == "***"
    runs = {run.data.tags["nbsweep.run"]: run for run in logged(project)}
    assert runs["api/fail_True"].data.tags["nbsweep.error"] == "ValueError: token *** was refused"
    written = [project.out / name for name in ("summary.csv", "summary.json", "index.html")]
    store = [project.root / "store.db", *(path for path in (project.root / "mlruns").rglob("*") if path.is_file())]
    assert len(store) > 1  # the database and the logged notebooks
    assert [str(path) for path in [*written, *store] if SECRET.encode() in path.read_bytes()] == []
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
