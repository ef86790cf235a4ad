"""The ``nbsweep`` command: formats what the package's Python API returns."""

from nbsweep.adapters.jsonschema_internals import skip_iri_checks

skip_iri_checks()
