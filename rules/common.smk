# Plan the sweep: read and validate the config, expand runs, sync each run's job file.
import shlex
import sys
from pathlib import Path

from nbsweep import layout
from nbsweep.plan import SAFE_NAME
from nbsweep.workflow import finish, load_or_exit

SWEEP = load_or_exit(
    config_files=workflow.overwrite_configfiles,
    schema_file=Path(workflow.basedir) / "config" / "schema.yaml",
    recover=workflow.is_main_process,
)
OUTPUT_DIR = SWEEP.output_dir
TARGET = layout.TARGET.format(output_dir=OUTPUT_DIR, name="{notebook}", label="{label}")
# The jobs' interpreter (the one running Snakemake, or the conda env's with --sdm conda),
# importing nbsweep from this checkout in either case.
PYTHON = "{}={}${{PYTHONPATH:+:$PYTHONPATH}} exec {}".format(
    "PYTHONPATH",
    shlex.quote(workflow.basedir),
    (
        "python"
        if workflow.deployment_settings.deployment_method
        else shlex.quote(sys.executable)
    ),
)
# Batches (batch_size) on clusters: Snakemake splits a group into its unconnected runs unless
# --group-components names it; profiles/slurm's `nbsweep_batch=<big>` covers every batch group.
workflow.parent_groupids.update(
    dict.fromkeys(filter(None, SWEEP.groups.values()), "nbsweep_batch")
)


wildcard_constraints:
    notebook=SAFE_NAME,
    label=SAFE_NAME,


def get_run(wildcards):
    return SWEEP.run(wildcards.notebook, wildcards.label)


def get_job_file(wildcards):
    return SWEEP.job_files[(wildcards.notebook, wildcards.label)]


def get_data_inputs(wildcards):
    # Content changes reach the job file's fingerprint; mtimes must not trigger reruns.
    return [ancient(path) for path in get_run(wildcards).inputs]


def get_threads(wildcards):
    return get_run(wildcards).threads


def get_group(wildcards):
    return SWEEP.groups[(wildcards.notebook, wildcards.label)]


def get_resources():
    # Every resource any run sets (mem_mb, runtime, slurm_partition, ...), looked up per run.
    return {
        name: lambda wc, name=name: SWEEP.resource(name, (wc.notebook, wc.label))
        for name in SWEEP.resource_names
    }
