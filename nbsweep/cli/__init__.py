"""The ``nbsweep`` command: formats what the package's Python API returns."""
