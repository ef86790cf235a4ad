# One job per run: papermill executes the template with the run's parameters.
# nbsweep's own rules are named nbsweep_*; every other rule is a template's name.


rule nbsweep_run:
    input:
        job=get_job_file,
        data=get_data_inputs,
    output:
        TARGET,
    log:
        layout.log(Path(TARGET)),
    group:
        get_group
    conda:
        "../envs/notebook.yaml"
    threads: get_threads
    resources:
        **get_resources(),
    shell:
        NBSWEEP_PYTHON + " -m nbsweep.run {input.job:q} {output:q} {log:q}"


for _name in SWEEP.template_names:

    rule:
        name:
            _name
        input:
            SWEEP.targets(_name),
        localrule: True
