# Plan the sweep: read and validate the project's config, expand runs, decide which are current.
import nbsweep.smk.hooks
from nbsweep import layout
from nbsweep.model.plan import SAFE_NAME

SWEEP = nbsweep.smk.hooks.plan_or_exit(workflow)
OUTPUT_DIR = SWEEP.output_dir
TARGET = layout.TARGET.format(output_dir=OUTPUT_DIR, name="{notebook}", label="{label}")
# How the jobs start Python (this interpreter, or the conda env's with --sdm conda).
NBSWEEP_PYTHON = nbsweep.smk.hooks.job_python(workflow)
# A run's job: its notebook and log; the job file comes from its invocation (nbsweep.execution.job).
RUN_COMMAND = (
    f"{NBSWEEP_PYTHON} -m nbsweep.execution.job {{output.notebook:q}} {{log:q}}"
)
PRIORITY = nbsweep.smk.hooks.priorities(SWEEP)
# Batches (batch_size) on clusters: one --group-components entry covers every batch group.
nbsweep.smk.hooks.join_batches(workflow, SWEEP)


wildcard_constraints:
    notebook=SAFE_NAME,
    label=SAFE_NAME,


def get_run(wildcards):
    return nbsweep.smk.hooks.run_or_exit(SWEEP, wildcards.notebook, wildcards.label)


def get_job_inputs(wildcards):
    return job_inputs_of(get_run(wildcards))


def job_inputs_of(run):
    # A run executes when its notebook does not record the provenance planned now, it is forced,
    # or a run it waits for executes: then its input is the fresh job file of this invocation.
    # Files of the runs it waits for order the jobs; no input's mtime counts, except that those
    # of upstream runs executing now tell Snakemake to run this one after them. An executing run
    # lists no other file: Snakemake fails a job whose outputs are older than an input, ancient or
    # not, and a data file may be dated in the future (clock skew, a restore from backup).
    fresh, settled = nbsweep.smk.hooks.upstream_files(workflow, SWEEP, run)
    job = nbsweep.smk.hooks.job_inputs(workflow, SWEEP, run)
    if job:
        return [*job, *fresh]
    waited_for = {*fresh, *settled}
    data = [path for path in run.inputs if path not in waited_for]
    return [*fresh, *map(ancient, [*settled, *data])]


def get_priority(wildcards):
    # Config order when nothing else decides (Snakemake starts higher priorities first).
    return PRIORITY[(wildcards.notebook, wildcards.label)]


def get_threads(wildcards):
    return get_run(wildcards).threads


def get_group(wildcards):
    return SWEEP.groups[(wildcards.notebook, wildcards.label)]


def get_resources():
    # Every resource any run sets (mem_mb, runtime, slurm_partition, ...): a constant where all
    # runs agree (Snakemake evaluates a function for every job), else looked up per run.
    shared = SWEEP.shared_resources
    return {
        name: (
            shared[name]
            if name in shared
            else lambda wc, name=name: SWEEP.resource(name, (wc.notebook, wc.label))
        )
        for name in SWEEP.resource_names
    }


THREADS = SWEEP.shared_threads or get_threads
