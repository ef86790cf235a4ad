"""The ``nbsweep`` command: formats what the package's Python API returns."""

from nbsweep.adapters.jsonschema_internals import skip_iri_syntax

skip_iri_syntax()  # first thing in this process: ~1 s of CPU saved wherever jupyter_server is installed
