"""Executing one run: the job's entry point, papermill, a run's files, the warm runner."""

from nbsweep.adapters.jsonschema_internals import skip_iri_syntax

skip_iri_syntax()  # first thing in this process: ~1 s of CPU saved wherever jupyter_server is installed
