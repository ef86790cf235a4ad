"""nbsweep.adapters: what nbsweep relies on in Snakemake, papermill and Jupyter beyond their documented
interfaces is still there. Each failure names the library, the version the adapter was checked against
and what changed: update the adapter (and its version comment), not the callers."""

import ast
import dataclasses
import importlib.metadata
import importlib.util
import inspect
import io
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from nbsweep.adapters import jupyter_internals, papermill_internals, snakemake_internals

CHECKED = {"snakemake": "9.27.1", "papermill": "2.7.0", "jsonschema": "4.26.0", "jupyter_client": "8.10.0", "ipykernel": "7.4.0"}
ZYGOTE = Path(__file__).resolve().parents[2] / "nbsweep" / "kernels" / "zygote.py"


def changed(library: str, what: str) -> str:
    """The assertion message: the library, the version checked, the version installed, what changed."""
    installed = importlib.metadata.version(library)
    return f"{library} {installed} (nbsweep's adapter was checked against {CHECKED[library]}) changed: {what}"


def source(obj) -> str:
    return inspect.getsource(obj)


# Snakemake


def workflow_class():
    import snakemake.api  # noqa: F401 -- snakemake.workflow imported first is a circular import
    from snakemake.workflow import Workflow

    return Workflow


@pytest.mark.parametrize("name", ["is_main_process", "dryrun", "local_exec", "executor_plugin", "overwrite_configfiles", "parent_groupids"])
def test_snakemake_workflow_has_the_properties_the_adapter_reads(name):
    attribute = inspect.getattr_static(workflow_class(), name, None)
    assert isinstance(attribute, property), changed("snakemake", f"Workflow.{name} is no longer a property (snakemake_internals)")


@pytest.mark.parametrize("name", ["config_settings", "dag_settings", "deployment_settings"])
def test_snakemake_workflow_has_the_settings_the_adapter_reads(name):
    fields = {field.name for field in dataclasses.fields(workflow_class())}
    assert name in fields, changed("snakemake", f"Workflow has no dataclass field {name!r} any more (snakemake_internals)")


def test_snakemake_workflow_keeps_its_configfiles_and_parent_groupids():
    init = source(workflow_class().__post_init__)
    assert "self.configfiles = " in init, changed(
        "snakemake", "Workflow no longer sets self.configfiles (snakemake_internals.config_files)"
    )
    assert "self._parent_groupids = dict()" in init, changed(
        "snakemake", "Workflow.parent_groupids is no longer a dict it keeps (snakemake_internals.join_groups)"
    )


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ("DAGSettings", {"forceall", "forcerun", "targets", "forcetargets", "target_jobs", "until", "omit_from"}),
        ("ConfigSettings", {"config_args", "configfiles"}),
        ("DeploymentSettings", {"deployment_method"}),
    ],
)
def test_snakemake_settings_have_the_fields_the_adapter_reads(settings, names):
    from snakemake.settings import types

    missing = names - {field.name for field in dataclasses.fields(getattr(types, settings))}
    assert not missing, changed("snakemake", f"snakemake.settings.types.{settings} lost {sorted(missing)} (snakemake_internals)")


def test_files_written_while_the_dag_is_built_are_noted_present_in_snakemakes_io_cache(tmp_path):
    from snakemake.io import IOCache, iocache

    assert "self.iocache = " in source(workflow_class()._prepare_dag), changed(
        "snakemake", "Workflow.iocache has gone (snakemake_internals.note_present)"
    )
    read_first = "getattr(self.rule.workflow.iocache, func.__name__)" in source(iocache)
    assert read_first, changed("snakemake", "IOFile's cached queries (exists_local, mtime) no longer read Workflow.iocache first")
    cache = IOCache(max_wait_time=1)
    cache.exists_local.has_inventory.add(str(tmp_path))  # its folder was listed before the files were written
    written, dry = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    written.write_text("{}")
    cache.mtime[str(written)] = "stale"
    snakemake_internals.note_present(SimpleNamespace(iocache=cache), [written, dry])
    assert cache.exists_local[str(written)] is True and cache.exists_local[str(dry)] is True
    assert str(written) not in cache.mtime and cache.mtime[str(dry)].local() > 0  # a dry-run's: taken as written now


def test_forced_jobs_are_read_from_the_dag_settings():
    settings = SimpleNamespace(forceall=False, forcerun=["nbsweep_run"], targets=["a.ipynb"], forcetargets=False)
    workflow = SimpleNamespace(dag_settings=settings)
    assert snakemake_internals.forces(workflow, {"nbsweep_run", "x.ipynb"}, "x.ipynb")
    assert not snakemake_internals.forces(workflow, {"other"}, "a.ipynb")
    settings.forcetargets = True
    assert snakemake_internals.forces(workflow, {"other"}, "a.ipynb")


def test_forcing_with_a_target_rule_and_force_targets():
    settings = SimpleNamespace(forceall=False, forcerun=[], targets=["echo"], forcetargets=True)
    workflow = SimpleNamespace(dag_settings=settings)
    assert snakemake_internals.forces(workflow, {"nbsweep_run", "echo", "x.ipynb"}, "x.ipynb")
    assert not snakemake_internals.forces(workflow, {"nbsweep_run", "other", "y.ipynb"}, "y.ipynb")


def test_selection_flags_are_read_from_the_dag_settings():
    from snakemake.settings.types import DAGSettings

    settings = DAGSettings(forcerun={"make", "b.txt"}, until={"out/a.txt"}, omit_from={"echo"})
    flags = snakemake_internals.selection_flags(SimpleNamespace(dag_settings=settings))
    assert flags == {"--forcerun": ["b.txt", "make"], "--until": ["out/a.txt"], "--omit-from": ["echo"]}


def test_rules_say_which_files_they_make():
    from snakemake.rules import Rule

    assert isinstance(inspect.getattr_static(workflow_class(), "rules", None), property), changed(
        "snakemake", "Workflow.rules is no longer a property (snakemake_internals.rule_names, has_producer)"
    )
    assert list(inspect.signature(Rule.is_producer).parameters) == ["self", "requested_output"], changed(
        "snakemake", "Rule.is_producer(requested_output) changed (snakemake_internals.has_producer)"
    )
    rules = [SimpleNamespace(name="make", is_producer=lambda path: path.startswith("out/"))]
    workflow = SimpleNamespace(rules=rules)
    assert snakemake_internals.rule_names(workflow) == {"make"}
    assert snakemake_internals.has_producer(workflow, "out/a.txt") and not snakemake_internals.has_producer(workflow, "a.csv")


def test_omitted_files_are_added_where_the_dag_reads_them_once_built():
    from snakemake.dag import DAG

    assert "self.omitfiles = set()" in source(DAG.__init__) and "self.omitfiles" in source(DAG.in_omitfrom), changed(
        "snakemake", "DAG.omitfiles is no longer the set --omit-from files are read from (snakemake_internals.omit_from_files)"
    )
    init = source(DAG.init)
    assert init.index("await self.update_needrun(") < init.index("self.delete_omitfrom_jobs()"), changed(
        "snakemake", "DAG.init omits jobs before every job is added (snakemake_internals.omit_from_files)"
    )
    assert isinstance(inspect.getattr_static(workflow_class(), "dag", None), property), changed(
        "snakemake", "Workflow.dag is no longer a property"
    )
    workflow = SimpleNamespace(dag=SimpleNamespace(omitfiles={"x"}))
    snakemake_internals.omit_from_files(workflow, ["a.ipynb"])
    assert workflow.dag.omitfiles == {"x", "a.ipynb"}


def test_target_jobs_are_parsed_from_the_command_line_snakemake_executors_write():
    from snakemake.cli import get_argument_parser

    option = next((a for a in get_argument_parser()._actions if snakemake_internals.TARGET_JOBS_OPTION in a.option_strings), None)
    assert option is not None and option.nargs == "+", changed(
        "snakemake", "its command line has no --target-jobs TARGET_JOBS [...] option"
    )
    parsing = SimpleNamespace(dag_settings=None)
    argv = ["--snakefile", "S", "--target-jobs", "nbsweep_run:notebook=t,label=a", "r:", "--cores", "2"]
    assert snakemake_internals.target_jobs(parsing, argv) == [("nbsweep_run", {"notebook": "t", "label": "a"}), ("r", {})], changed(
        "snakemake", "snakemake.target_jobs.parse_target_jobs_cli_args no longer gives TargetSpec(rulename, wildcards_dict)"
    )
    assert snakemake_internals.target_jobs(parsing, ["--cores", "2"]) is None


def test_configfiles_are_read_from_the_command_line_as_snakemake_parses_it():
    from snakemake.cli import get_argument_parser

    option = next((a for a in get_argument_parser()._actions if "--configfile" in a.option_strings), None)
    assert option is not None and "--configfiles" in option.option_strings and option.nargs == "+", changed(
        "snakemake", "--configfile/--configfiles FILE [FILE ...] is no longer one option (snakemake_internals.command_line_configfiles)"
    )
    argv = ["-n", "--configfile", "a.yaml", "b.json", "--cores", "2", "--configfiles=c.yaml", "x"]
    assert snakemake_internals.command_line_configfiles(argv) == [Path("a.yaml"), Path("b.json"), Path("c.yaml")]


def test_configfile_error_texts_are_what_snakemake_raises(tmp_path):
    from snakemake.common.configfile import load_configfile

    cases = [("broken.yaml", b"runs: [\n"), ("list.yaml", b"- a\n"), ("latin1.yaml", b"runs: [\xe9]\n")]
    for (name, content), text in zip(cases, snakemake_internals.CONFIGFILE_ERRORS, strict=True):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(Exception) as raised:
            load_configfile(tmp_path / name)
        said = f"{type(raised.value).__name__}: {raised.value}"
        assert snakemake_internals.is_configfile_error(said), changed("snakemake", f"reading {name} no longer says {text!r} but {said!r}")


def test_job_failures_are_logged_with_the_exception_name():
    from snakemake import exceptions

    assert "exception=ex.__class__.__name__" in source(exceptions.print_exception), changed(
        "snakemake", "print_exception no longer logs the exception's class name (snakemake_internals.announces_job_failure)"
    )
    assert hasattr(exceptions, "RuleException"), changed("snakemake", "snakemake.exceptions.RuleException has gone")
    assert snakemake_internals.announces_job_failure(SimpleNamespace(exception="RuleException"))


def test_the_restart_message_is_what_snakemake_logs():
    from snakemake.scheduling import job_scheduler

    assert f'"{snakemake_internals.RESTART_MESSAGE} ' in source(job_scheduler), changed(
        "snakemake", f"the job scheduler no longer logs {snakemake_internals.RESTART_MESSAGE!r} (snakemake_internals.is_restart_message)"
    )


def test_the_periodic_wildcard_values_snakemake_refuses_are_those_nbsweep_refuses():
    from snakemake.io import PeriodicityDetector

    values = ["b" * 19, "b" * 20, "b" * 100, "b" * 128, "run-" + "0" * 25 + "1", "x" + "ab" * 20, "x" + "ab" * 19, "abc" * 21, "a-b" * 7]
    for value in values:
        expected = PeriodicityDetector().is_periodic(value)
        found = snakemake_internals.periodic_part(value)
        assert (found and found[0]) == expected, changed(
            "snakemake", f"PeriodicityDetector finds {expected!r} in {value!r} (snakemake_internals.periodic_part)"
        )


def test_nothing_to_be_done_message_exists():
    message = snakemake_internals.nothing_to_be_done_message()
    assert isinstance(message, str) and "Nothing to be done" in message, changed("snakemake", "snakemake.common.NOTHING_TO_BE_DONE_MSG")


def test_snakemakes_own_records_are_told_from_its_plugins():
    from snakemake import logging as snakemake_logging

    assert snakemake_internals.logged_by_snakemake(snakemake_logging.__file__), changed(
        "snakemake", "snakemake.logging is not in its package"
    )
    assert not snakemake_internals.logged_by_snakemake(__file__)


def test_snakemakes_console_handler_can_be_built():
    settings = SimpleNamespace(
        nocolor=True, quiet=None, show_failed_logs=False, debug_dag=False, verbose=False, dryrun=False, printshellcmds=False
    )
    stream = io.StringIO()
    try:
        handler = snakemake_internals.default_console_handler(settings, stream)
    except TypeError as err:
        pytest.fail(changed("snakemake", f"ColorizingTextHandler, DefaultFilter or DefaultFormatter take other arguments ({err})"))
    assert isinstance(handler, logging.Handler), changed("snakemake", "ColorizingTextHandler is no logging.Handler")


def test_resources_are_read_as_snakemake_reads_them():
    from snakemake.resources import Resource

    parameters = list(inspect.signature(Resource).parameters)[:2]
    assert parameters == ["name", "value"] and hasattr(Resource, "standardize_size"), changed(
        "snakemake", f"snakemake.resources.Resource is now Resource({', '.join(parameters)}, ...) (snakemake_internals.resource_reading)"
    )
    assert snakemake_internals.resource_reading("mem", "4GB", sized=True) == ("mem_mb", 4000), changed(
        "snakemake", "Resource('mem', '4GB')"
    )
    assert snakemake_internals.resource_reading("runtime", "2h", sized=False) == ("runtime", 120), changed(
        "snakemake", "Resource('runtime', '2h')"
    )
    with pytest.raises(ValueError):
        snakemake_internals.resource_reading("mem", "lots", sized=True)


def test_a_jobs_environment_is_what_snakemake_gives_a_jobs_command(tmp_path):
    env = snakemake_internals.job_environment(threads=3, tmpdir=str(tmp_path))
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3" and env["TMPDIR"] == env["TEMP"] == str(tmp_path), changed(
        "snakemake", "snakemake.shell.shell no longer sets a job's thread and temp-dir variables (snakemake_internals.job_environment)"
    )
    assert env["PATH"] == os.environ["PATH"]


def test_job_threads_are_bounded_as_snakemake_bounds_them():
    from snakemake.rules import Rule

    expand = source(Rule.expand_resources)
    assert "resource_settings.max_threads" in expand and 'global_resources.get("_cores")' in expand, changed(
        "snakemake", "Rule.expand_resources bounds threads differently (snakemake_internals.job_threads)"
    )
    cores = SimpleNamespace(value=2)
    workflow = SimpleNamespace(resource_settings=SimpleNamespace(max_threads=None), global_resources={"_cores": cores})
    assert snakemake_internals.job_threads(workflow, 4) == 2 and snakemake_internals.job_threads(workflow, 1) == 1
    assert snakemake_internals.local_cores(workflow) == 2


def test_exit_callbacks_run_before_threads_are_joined():
    assert callable(getattr(threading, "_register_atexit", None)), (
        f"Python {sys.version.split()[0]} (checked against 3.11.7) has no threading._register_atexit: "
        "snakemake_internals.on_exit falls back to atexit, and results wait for Snakemake's timers"
    )


def test_snakemakes_rate_limiter_timers_are_threading_timers():
    from snakemake.scheduling.job_scheduler import JobScheduler

    assert "threading.Timer(" in source(JobScheduler._schedule_reevalutation), changed(
        "snakemake",
        "JobScheduler._schedule_reevalutation no longer starts a threading.Timer (snakemake_internals.cancel_rate_limiter_timers)",
    )
    ours = threading.Timer(600, print)
    theirs = threading.Timer(600, lambda: None)
    theirs.function.__module__ = "snakemake.scheduling.job_scheduler"
    ours.start()
    theirs.start()
    try:
        snakemake_internals.cancel_rate_limiter_timers()
        assert theirs.finished.is_set() and not ours.finished.is_set()
    finally:
        ours.cancel()
        theirs.cancel()


# papermill


def test_papermills_remote_io_backends_are_optional_imports():
    import papermill.iorw

    iorw = source(papermill.iorw)
    for module in ("s3", "adl", "abs", "gcsfs", "pyarrow", "github"):
        assert module in iorw, changed("papermill", f"papermill.iorw no longer imports {module} (papermill_internals.REMOTE_IO_BACKENDS)")
    assert iorw.count("except ImportError") >= 6, changed("papermill", "papermill.iorw's backend imports are no longer optional")
    script = (
        "import sys\nfrom nbsweep.adapters import papermill_internals as p\nwith p.skip_remote_io_backends():\n    import papermill\n"
        "papermill.execute_notebook\nassert 'botocore' not in sys.modules\nimport botocore"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, changed("papermill", f"it cannot be imported without its cloud backends:\n{proc.stderr[-2000:]}")


def test_papermills_command_line_types_and_yaml_loader_are_still_there():
    import yaml

    assert [papermill_internals.resolve_type(v) for v in ("True", "None", "3", "1e3", "0.1", "true")] == [True, None, 3, 1000.0, 0.1, "true"], changed(
        "papermill", "papermill.cli._resolve_type types -p values differently (papermill_internals.resolve_type)"
    )  # fmt: skip
    loader = papermill_internals.yaml_loader()
    assert issubclass(loader, yaml.SafeLoader) and yaml.load("d: 2024-01-01", Loader=loader) == {"d": "2024-01-01"}, changed(  # noqa: S506
        "papermill",
        "papermill.iorw.NoDatesSafeLoader is no longer a safe loader that keeps dates as text (papermill_internals.yaml_loader)",
    )


def test_papermills_translator_registry_takes_nbsweeps_translators():
    from papermill.translators import PythonTranslator, RTranslator, Translator

    class Probe(PythonTranslator):
        pass

    registry = papermill_internals.register_translator(("nbsweep-probe-kernel",), Probe)
    assert registry.find_translator("nbsweep-probe-kernel", "python") is Probe, changed(
        "papermill", "papermill.translators.papermill_translators.register/find_translator (papermill_internals.register_translator)"
    )
    for name in ("inspect", "translate_escaped_str"):  # what nbsweep's R translator overrides (nbsweep.model.parameters)
        assert name in vars(Translator) and issubclass(RTranslator, Translator), changed("papermill", f"Translator.{name} has gone")
    assert [p.name for p in PythonTranslator.inspect({"source": "a = 1"})] == ["a"], changed("papermill", "PythonTranslator.inspect(cell)")


# jsonschema


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None, reason="rfc3987-syntax is not installed (no jupyter_server here)")
def test_nbsweeps_processes_import_jsonschema_without_its_iri_parser_and_kernels_keep_it():
    """Snakemake's process, a job's and the CLI's import jsonschema without rfc3987_syntax (its
    import builds a parser: ~1 s of CPU), and formats still check.
    A kernel importing ``nbsweep`` (for ``record``) gets jsonschema as it comes."""
    plain = "import sys, jsonschema\nprint('rfc3987_syntax' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "True", changed(
        "jsonschema", "importing it no longer imports rfc3987_syntax: jsonschema_internals can go"
    )
    for package in ("nbsweep.smk", "nbsweep.execution", "nbsweep.cli"):
        script = (
            f"import sys, {package}, nbformat, jsonschema\nassert sys.modules.get('rfc3987_syntax') is None\n"
            "jsonschema.validate({'a': 'x@y.z'}, {'properties': {'a': {'format': 'email'}}}, format_checker=jsonschema.FormatChecker())"
        )
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, changed("jsonschema", f"{package} cannot import it without rfc3987_syntax:\n{proc.stderr[-2000:]}")
    kernel = "import sys, nbsweep, jsonschema\nassert 'rfc3987_syntax' in sys.modules"
    assert subprocess.run([sys.executable, "-c", kernel], check=False).returncode == 0, (
        "importing nbsweep in a kernel changed its jsonschema"
    )


# jupyter_client and ipykernel


def test_a_kernel_managers_provisioner_can_be_preset():
    from jupyter_client.manager import KernelManager
    from jupyter_client.provisioning import LocalProvisioner
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    assert "if self.provisioner is None" in source(KernelManager._async_pre_start_kernel), changed(
        "jupyter_client", "KernelManager replaces a provisioner set before the kernel starts (jupyter_internals.preset_provisioner)"
    )
    assert "kernel_id=kernel_id, kernel_spec=kernel_spec, parent=parent" in source(KernelProvisionerFactory.create_provisioner_instance), (
        changed("jupyter_client", "provisioners are built with other arguments (jupyter_internals.preset_provisioner)")
    )
    manager = KernelManager(kernel_name="python3")
    provisioner = jupyter_internals.preset_provisioner(manager, LocalProvisioner)
    assert manager.provisioner is provisioner and provisioner.kernel_id == manager.kernel_id, changed(
        "jupyter_client", "KernelManager.provisioner cannot be set"
    )
    assert jupyter_internals.kernel_pid(manager) is None


@pytest.mark.parametrize(
    "method", ["pre_launch", "launch_kernel", "has_process", "poll", "wait", "send_signal", "kill", "terminate", "cleanup"]
)
def test_local_provisioner_has_what_the_fork_provisioner_builds_on(method):
    from jupyter_client.provisioning import LocalProvisioner

    assert method in vars(LocalProvisioner), changed("jupyter_client", f"LocalProvisioner.{method} has gone (nbsweep.kernels.forking)")


def test_local_provisioner_records_a_launch_in_pid_pgid_and_cwd():
    from jupyter_client.provisioning import LocalProvisioner

    launch = source(LocalProvisioner.launch_kernel)
    for name in ("pid", "pgid", "cwd"):
        assert f"self.{name} = " in launch, changed(
            "jupyter_client", f"LocalProvisioner.launch_kernel no longer sets self.{name} (jupyter_internals)"
        )
    provisioner = SimpleNamespace()
    jupyter_internals.record_launch(provisioner, 12, pgid=12, cwd="/x")
    assert (provisioner.pid, provisioner.pgid, provisioner.cwd) == (12, 12, "/x")


def test_kernels_are_told_their_parent_as_jupyter_client_tells_them():
    import ipykernel.kernelapp
    from jupyter_client import launcher

    assert 'env["JPY_PARENT_PID"] = str(os.getpid())' in source(launcher.launch_kernel), changed(
        "jupyter_client", "launch_kernel no longer sets JPY_PARENT_PID (jupyter_internals.launch_environment)"
    )
    assert "JPY_PARENT_PID" in source(ipykernel.kernelapp), changed("ipykernel", "the kernel no longer reads JPY_PARENT_PID")
    assert jupyter_internals.launch_environment({"A": "1"})["JPY_PARENT_PID"].isdigit()


def test_channel_urls_are_jupyter_clients():
    from jupyter_client.manager import KernelManager

    manager = KernelManager(transport="ipc", ip="/tmp/nbsweep-kernel-x/kernel", shell_port=7)
    info = manager.get_connection_info()
    assert jupyter_internals.channel_url(info, "shell") == manager._make_url("shell"), changed(
        "jupyter_client", "kernels' ZeroMQ addresses are made otherwise (jupyter_internals.channel_url)"
    )


def zygote_constant(name: str):
    """A constant of nbsweep/kernels/zygote.py, read without running it (it is a script for the kernel's interpreter)."""
    for node in ast.parse(ZYGOTE.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{ZYGOTE} defines no {name}")


def test_the_zygotes_ipykernel_modules_are_what_kernelapp_imports():
    import ipykernel.kernelapp

    kernelapp = source(ipykernel.kernelapp)
    for name in zygote_constant("KERNEL_MODULES"):
        assert importlib.util.find_spec(name) is not None, changed("ipykernel", f"{name} cannot be imported (zygote.KERNEL_MODULES)")
        relative = "." + name.removeprefix("ipykernel.") if name.startswith("ipykernel.") else name
        assert f"from {relative} import" in kernelapp, changed("ipykernel", f"kernelapp no longer imports {name} (zygote.KERNEL_MODULES)")
    assert zygote_constant("INLINE") in kernelapp, changed("ipykernel", "kernelapp sets MPLBACKEND to another backend (zygote.INLINE)")
