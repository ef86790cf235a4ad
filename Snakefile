# nbsweep: run every notebook run listed in config/ (see README.md and config/README.md).


include: "rules/common.smk"
include: "rules/notebooks.smk"
include: "rules/results.smk"


report: "report/workflow.rst"


localrules:
    all,


rule all:
    default_target: True
    input:
        SWEEP.targets(),
        RESULTS,
        REPORTED,


onsuccess:
    finish(SWEEP)


onerror:
    finish(SWEEP)
