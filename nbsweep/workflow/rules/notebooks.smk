# One job per run: papermill executes the template with the run's parameters, as written in
# its job file by this invocation. nbsweep's own rules are named nbsweep_*; every other rule is a
# template's name.


rule nbsweep_run:
    input:
        get_job_inputs,
    output:
        TARGET,
    log:
        str(layout.RunFiles(Path(TARGET)).log),
    priority: get_priority
    group:
        get_group
    conda:
        "../envs/notebook.yaml"
    threads: THREADS
    resources:
        **get_resources(),
    shell:
        NBSWEEP_PYTHON + " -m nbsweep.run {output:q} {log:q}"


for _name in SWEEP.template_names:

    rule:
        name:
            _name
        input:
            SWEEP.targets(_name),
        localrule: True
