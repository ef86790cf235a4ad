# One job per run: papermill executes the template with the run's parameters.


rule notebook:
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
    params:
        python=PYTHON,
    shell:
        "{params.python} -m nbsweep.run {input.job:q} {output:q} {log:q}"


for _name in SWEEP.template_names:

    rule:
        name:
            _name
        input:
            SWEEP.targets(_name),
        localrule: True
