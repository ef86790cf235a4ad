# One job per run: papermill executes the template with the run's parameters, as written in
# its job file by this invocation. nbsweep's own rules are named nbsweep_*; every other rule is a
# template's name.


rule nbsweep_run:
    input:
        get_job_inputs,
    output:
        notebook=TARGET,
    log:
        str(layout.RunFiles(Path(TARGET)).log),
    wildcard_constraints:
        notebook=SWEEP.notebook_wildcard(SAFE_NAME),
    priority: get_priority
    group:
        get_group
    conda:
        "../envs/notebook.yaml"
    threads: THREADS
    resources:
        **get_resources(),
    shell:
        RUN_COMMAND


# A run with declared outputs has a rule of its own (outputs cannot vary per run in one rule).
for _run in SWEEP.producing_runs:
    _key = (_run.name, _run.label)

    rule:
        name:
            SWEEP.rule_name(_run)
        input:
            lambda wildcards, run=_run: job_inputs_of(run),
        output:
            **SWEEP.own_rule_outputs(_run),
        log:
            str(layout.RunFiles(Path(SWEEP.target(_run))).log),
        priority: PRIORITY[_key]
        group:
            lambda wildcards, key=_key: SWEEP.groups[key]
        conda:
            "../envs/notebook.yaml"
        threads: _run.threads
        resources:
            **{name: SWEEP.resource(name, _key) for name in SWEEP.resource_names},
        shell:
            RUN_COMMAND


for _name in SWEEP.template_names:

    rule:
        name:
            _name
        input:
            SWEEP.targets(_name),
        localrule: True
