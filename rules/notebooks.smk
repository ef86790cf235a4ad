# One job per run: papermill executes the template with the run's parameters.


rule notebook:
    input:
        job=get_job_file,
        data=get_data_inputs,
    output:
        TARGET,
    log:
        layout.log(Path(TARGET)),
    threads: get_threads
    resources:
        mem_mb=get_resource("mem_mb"),
        runtime=get_resource("runtime"),
    params:
        python=PYTHON,
    conda:
        "../envs/notebook.yaml"
    shell:
        "exec {params.python:q} -m nbsweep.run {input.job:q} {output:q} {log:q}"


for _name in SWEEP.template_names:

    rule:
        name:
            _name
        localrule: True
        input:
            SWEEP.targets(_name),
