"""The parameters a template declares in its cell tagged ``parameters``: names, types, defaults.

papermill's translators read the cell (``Translator.inspect``, as ``papermill --help-notebook``
shows it): each parameter's name, inferred type, default text and help comment. Languages whose
translator cannot inspect a cell declare nothing that nbsweep can check.

Default *values* (for a run's effective parameters: the defaults with the run's own parameters
on top) are read from Python templates only, with ``ast``: an assignment whose value is a literal
(numbers, strings, booleans, None, lists, tuples, dicts with string keys) is a default; one
computed from an expression (``n = len(x)``) is left out, as its value is not known without
executing the notebook. A cell that is not plain Python (IPython magics) is read by papermill's
line-by-line inspection instead.
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
    """The first cell tagged ``parameters`` (the one papermill uses), or None."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def parameters_source(nb) -> str | None:
    """The source of the parameters cell, or None."""
    cell = parameters_cell(nb)
    if cell is None:
        return None
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


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


def json_like(value):
    """``value`` as JSON data (tuples as lists); raises ValueError for sets, bytes, complex, ..."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_like(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: json_like(item) for key, item in value.items()}
    raise ValueError(f"a {type(value).__name__} is not JSON-like")


def literal(node_or_text):
    """The JSON-like value of a literal expression (an ast node or source text); raises ValueError."""
    try:
        return json_like(ast.literal_eval(node_or_text))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("not a literal") from None


def assignments(source: str) -> list[tuple[str, object]] | None:
    """(name, value node) of the cell's top-level ``name = value`` statements; None if not Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = []
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            found += [(name, statement.value) for name in targets]
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value is not None:
            found.append((statement.target.id, statement.value))
    return found


def inspected(source: str) -> list[tuple[str, str]]:
    """(name, value text) as papermill's Python inspection reads the cell, line by line."""
    from papermill.translators import PythonTranslator

    return [(p.name, p.default) for p in PythonTranslator.inspect({"source": source})]


def declared_defaults(nb) -> dict:
    """Name -> default value of each literal assignment in ``nb``'s parameters cell (Python only)."""
    language = nb.get("metadata", {}).get("language_info", {}).get("name") or nb.get("metadata", {}).get("kernelspec", {}).get("language")
    source = parameters_source(nb)
    if source is None or (language or "python").lower() != "python":
        return {}
    found = assignments(source)
    pairs = found if found is not None else inspected(source)
    defaults = {}
    for name, value in pairs:  # a name assigned twice: the last assignment wins
        try:
            defaults[name] = literal(value)
        except ValueError:
            defaults.pop(name, None)
    return defaults
