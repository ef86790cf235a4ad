"""The parameters a template declares in its cell tagged ``parameters``.

papermill's translators read the cell (``Translator.inspect``, as ``papermill --help-notebook``
shows it): each parameter's name, inferred type, default and help comment. Languages whose
translator cannot inspect a cell declare nothing that nbsweep can check.
"""

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Parameter:
    name: str
    type_name: str  # the annotation, else the type of a literal default; "None" = unknown
    default: str  # source text of the default value
    help: str


def parameters_cell(nb):
    """The first cell tagged ``parameters``, or None."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def inspectable(kernel_name: str | None, language: str) -> bool:
    """Whether papermill can read declarations in this kernel's or language's parameters cells."""
    return _inspect(kernel_name, language, None) is not None


def declared(nb, kernel_name: str | None, language: str) -> list[Parameter] | None:
    """The declared parameters; None when the cell's language cannot be inspected."""
    cell = parameters_cell(nb)
    if cell is None:
        return []
    return _inspect(kernel_name, language, cell)


def _inspect(kernel_name: str | None, language: str, cell) -> list[Parameter] | None:
    from papermill.exceptions import PapermillException
    from papermill.translators import papermill_translators

    try:
        translator = papermill_translators.find_translator(kernel_name, language)
    except PapermillException:
        return None
    import nbformat

    try:
        found = translator.inspect(cell or nbformat.v4.new_code_cell(""))
    except NotImplementedError:
        return None
    python = language == "python"
    return [Parameter(p.name, type_of(p.inferred_type_name, p.default, python), p.default, p.help) for p in found]


def type_of(annotation: str, default: str, python: bool) -> str:
    """The annotation papermill read, else (Python) the type of a literal default; "None" = unknown."""
    if annotation not in ("None", "") or not python:
        return annotation
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "None"
    return "None" if value is None else type(value).__name__
