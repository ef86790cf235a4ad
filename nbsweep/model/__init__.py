"""What the user configured and the runs it expands to: config, templates, parameters, pipelines."""
