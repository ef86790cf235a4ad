"""Secret parameters: values a run's notebook takes from environment variables when it runs.

``secrets: {token: API_TOKEN}`` (in ``defaults`` or a run) gives the notebook parameter ``token``
the value of environment variable ``API_TOKEN``. The value never passes through nbsweep: the
parameters cell of the notebook papermill executes gets one line per secret that reads the
variable inside the kernel (``token = __import__("os").environ["API_TOKEN"]``), so the executed
notebook, its metadata, the log, job files, the summary, index.html and MLflow hold the
variable's name only. Only the names travel with the run (``Provenance.secrets``), outside its
fingerprint: a new value of the variable reruns nothing. Planning refuses a variable that is not
set, a secret the template does not declare, and templates in languages without a reader here.
"""

import copy
import os

from nbsweep.errors import SweepError
from nbsweep.model.formats import notebook_language

READERS = {  # language -> code assigning a parameter from an environment variable
    "python": '{name} = __import__("os").environ["{variable}"]  # secret: from environment variable {variable}',
    "R": '{name} <- Sys.getenv("{variable}")  # secret: from environment variable {variable}',
}


def run_secrets(secrets: dict[str, str], template, parameter_names: set[str], where: str) -> dict[str, str]:
    """The run's secrets (parameter -> environment variable), checked before anything runs."""
    if not secrets:
        return {}
    names = ", ".join(map(repr, secrets))
    if template.language not in READERS:
        raise SweepError(
            f"{where}: secrets ({names}) work in Python and R templates only, and {template.path} is {template.language}; pass the value another way"
        )
    if not template.has_parameters_cell:
        raise SweepError(f"{where}: secrets ({names}) need a cell tagged 'parameters' in {template.path}; add one that declares them")
    both = sorted(set(secrets) & parameter_names)
    if both:
        raise SweepError(f"{where}: {', '.join(map(repr, both))} is given both as a parameter and as a secret; keep one of them")
    undeclared = sorted(set(secrets) - set(template.declared_parameters))
    if undeclared and template.declared_parameters:
        raise SweepError(
            f"{where}: secret {', '.join(map(repr, undeclared))} is not declared in the parameters cell of {template.path} "
            f"(declared: {', '.join(template.declared_parameters)}); fix the name or declare it in the template"
        )
    for name, variable in secrets.items():
        if variable not in os.environ:
            raise SweepError(
                f"{where}: secret {name!r} comes from environment variable {variable}, which is not set; set it before running"
            )
    return dict(secrets)


def with_secrets(nb, secrets: dict[str, str] | None):
    """A copy of notebook ``nb`` whose parameters cell ends by reading each secret from the
    environment (``nb`` itself when there are none)."""
    if not secrets:
        return nb
    language = notebook_language(nb)
    nb = copy.deepcopy(nb)
    cell = next(cell for cell in nb.cells if "parameters" in cell.get("metadata", {}).get("tags", []))
    source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
    lines = [READERS[language].format(name=name, variable=variable) for name, variable in secrets.items()]
    cell.source = "\n".join([source.rstrip("\n"), *lines]) if source.strip() else "\n".join(lines)
    return nb
