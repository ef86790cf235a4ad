# Results: HTML renderings of executed notebooks (target `nbsweep_renderings`) and what
# nbsweep_all adds. summary.csv/json and index.html are written as the invocation ends
# (nbsweep.smk.hooks), whatever the outcome.
from nbsweep.results import summary
from nbsweep.packaged import WORKFLOW

RENDER = str(layout.RunFiles(Path(TARGET)).html)
# Renderings beside the notebooks, for the report. Each run's job makes its own and removes a
# stale one, so the rule only renders missing ones (Snakemake touches outputs after their job).
RENDERINGS = summary.existing_renderings(SWEEP)
# The summary for `snakemake --report`, as inputs of nbsweep_all.
SUMMARY_FILES = summary.reported_files(SWEEP, WORKFLOW / "report")
REPORTED = [report(f, caption=c, category="Summary") for f, c in SUMMARY_FILES]


rule nbsweep_render:
    input:
        ancient(TARGET),
    output:
        report(
            RENDER,
            caption="../report/notebook.rst",
            category="Notebooks",
            subcategory="{notebook}",
            labels=lambda wc: summary.labels(summary.row(get_run(wc), OUTPUT_DIR)),
        ),
    log:
        str(layout.RunFiles(Path(TARGET)).render_log),
    localrule: True
    conda:
        "../envs/notebook.yaml"
    shell:
        f"{NBSWEEP_PYTHON} -m nbsweep.results.render {{input:q}} {{output:q}} 2> {{log:q}}"


rule nbsweep_renderings:
    input:
        [str(layout.RunFiles(Path(target)).html) for target in SWEEP.targets()],
    localrule: True
