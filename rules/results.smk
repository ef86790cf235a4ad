# Results: HTML renderings of executed notebooks (target `report_index`) and what `all` adds.
# The summary files and index.html are written by the Snakefile's onsuccess/onerror handlers.
from nbsweep import summary
from nbsweep.render import html_path

RENDER = str(html_path(Path(TARGET)))
# For `all`: renderings made before (kept current) and, when the summary files are missing or
# list other runs, the output of `refresh_summary` (its only effect: the handlers run).
RESULTS = summary.extra_targets(SWEEP, check_summary=workflow.is_main_process)
# The summary for `snakemake --report`, as inputs of `all`.
SUMMARY_FILES = summary.reported_files(SWEEP, Path(workflow.basedir, "report"))
REPORTED = [report(f, caption=c, category="Summary") for f, c in SUMMARY_FILES]


rule render_notebook:
    input:
        TARGET,
    output:
        report(
            RENDER,
            caption="../report/notebook.rst",
            category="Notebooks",
            subcategory="{notebook}",
            labels=lambda wc: summary.labels(summary.row(get_run(wc), OUTPUT_DIR)),
        ),
    log:
        str(Path(TARGET).with_suffix(".render.log")),
    localrule: True
    conda:
        "../envs/notebook.yaml"
    params:
        python=PYTHON,
    shell:
        "{params.python} -m nbsweep.render {input:q} {output:q} 2> {log:q}"


rule report_index:
    input:
        [str(html_path(Path(target))) for target in SWEEP.targets()],
    localrule: True


rule refresh_summary:
    output:
        touch(f"{OUTPUT_DIR}/{summary.REFRESH}"),
    localrule: True
