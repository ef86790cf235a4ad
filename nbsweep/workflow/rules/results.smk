# Results: the files of `snakemake --report` (inputs of nbsweep_all) and the target
# `nbsweep_renderings`. summary.csv/json and index.html are written as the invocation ends
# (nbsweep.smk.hooks), whatever the outcome; each run's job writes its rendering.
from nbsweep.results import summary
from nbsweep.packaged import WORKFLOW

REPORTED = summary.reported_summary(SWEEP, report, WORKFLOW / "report")
RENDERINGS = summary.reported_renderings(SWEEP, report, WORKFLOW / "report")


# Renders the executed notebooks that have no rendering (e.g. executed with `render: false`);
# it executes no run.
rule nbsweep_renderings:
    input:
        summary.unrendered(SWEEP),
    log:
        str(layout.STATE / "renderings.log"),
    localrule: True
    conda:
        "../envs/notebook.yaml"
    shell:
        f"{NBSWEEP_PYTHON} -m nbsweep.results.render {{input:q}} 2> {{log:q}}"
