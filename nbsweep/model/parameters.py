"""The parameters a template declares in its cell tagged ``parameters``: names, types, defaults.

Which languages nbsweep reads declarations of (``DECLARING_LANGUAGES``):

- Python: the cell is parsed with ``ast`` (``name = value`` and ``name: annotation = value`` at
  top level); a cell that is not plain Python (IPython magics) is read by papermill's own
  line-by-line inspection instead (``Translator.inspect``, as ``papermill --help-notebook`` shows it).
- R: papermill's R translator cannot inspect a cell, so nbsweep reads the top-level
  ``name <- value`` / ``name = value`` lines itself, and registers an R translator that does the
  same with papermill (``nbsweep.execution.execute.translators``), so executing an R template does not warn that it cannot.

Other languages papermill translates parameters for (Julia, Scala, MATLAB, ...) declare nothing
nbsweep can check: ``declared`` returns None and any name passes.

Default *values* (for a run's effective parameters: the defaults with the run's own parameters
on top) are read from Python templates only, with ``ast``: an assignment whose value is a literal
(numbers, strings, booleans, None, lists, tuples, dicts with string keys) is a default; one
computed from an expression (``n = len(x)``) is left out, as its value is not known without
executing the notebook.

The defaults that count in a run's fingerprint (``known_defaults``) are stricter: only those whose
value the run would have whether or not its config gives that same value (``docs/staleness.md``).
"""

import ast
import math
import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Parameter:
    name: str
    type_name: str  # the annotation, else the type of a literal default; "None" = unknown
    default: str  # source text of the default value
    help: str
    annotated: bool = False  # type_name is the annotation (not inferred from the default)


def parameters_cell(nb):
    """The first cell tagged ``parameters`` (the one papermill uses), or None."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def parameters_source(nb) -> str | None:
    """The source of the parameters cell, or None."""
    cell = parameters_cell(nb)
    return None if cell is None else cell_source(cell)


DECLARING_LANGUAGES = ("python", "r")  # lower-case language names whose declarations nbsweep reads


def r_translator():
    """papermill's R translator, able to inspect a parameters cell (``r_assignments``) and writing
    strings as R reads them (``r_string``: papermill's own turns ``é`` into the byte ``\\xe9``)."""
    from papermill.models import Parameter as PapermillParameter
    from papermill.translators import RTranslator

    class NbsweepRTranslator(RTranslator):
        @classmethod
        def inspect(cls, parameters_cell):
            return [PapermillParameter(name, "None", default, "") for name, default in r_assignments(cell_source(parameters_cell))]

        @classmethod
        def translate_escaped_str(cls, str_val):
            return r_string(str_val) if isinstance(str_val, str) else super().translate_escaped_str(str_val)

    return NbsweepRTranslator


_R_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def r_string(text: str) -> str:
    """An R string literal of ``text``: UTF-8 characters as they are, control characters escaped."""
    return '"' + "".join(_R_ESCAPES.get(c) or (c if c.isprintable() else f"\\U{{{ord(c):x}}}") for c in text) + '"'


def cell_source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def declares(language: str) -> bool:
    """Whether nbsweep reads the declarations of parameters cells in this language."""
    return (language or "python").lower() in DECLARING_LANGUAGES


def declared(nb, kernel_name: str | None, language: str) -> list[Parameter] | None:
    """The declared parameters; None when nbsweep cannot read the cell's language."""
    cell = parameters_cell(nb)
    if not declares(language):
        return None
    if cell is None:
        return []
    source = cell_source(cell)
    if language.lower() == "r":
        return [Parameter(name, "None", default, "") for name, default in r_assignments(source)]
    found = python_declarations(source)
    if found is not None:
        return found
    from papermill.translators import PythonTranslator

    return [
        Parameter(p.name, type_of(p.inferred_type_name, p.default, True), p.default, p.help, p.inferred_type_name not in ("None", ""))
        for p in PythonTranslator.inspect(cell)
    ]


def python_declarations(source: str) -> list[Parameter] | None:
    """Top-level ``name = value`` / ``name: annotation = value`` statements of a Python cell, in
    order (a name assigned twice: its last assignment); None when the cell is not plain Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    found: dict[str, Parameter] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            names, annotation = [t.id for t in statement.targets if isinstance(t, ast.Name)], ""
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value is not None:
            names, annotation = [statement.target.id], ast.unparse(statement.annotation)
        else:
            continue
        default = ast.get_source_segment(source, statement.value) or ast.unparse(statement.value)
        rest = lines[statement.end_lineno - 1][statement.end_col_offset :].strip()
        help_text = rest[1:].strip() if rest.startswith("#") else ""
        for name in names:
            found.pop(name, None)
            found[name] = Parameter(name, type_of(annotation, default, True), default, help_text, bool(annotation))
    return list(found.values())


_R_NAME = r"[A-Za-z][A-Za-z0-9._]*|\.[A-Za-z_.][A-Za-z0-9._]*|`[^`]+`"
_R_ASSIGNMENT = re.compile(rf"\s*({_R_NAME})\s*(?:<<-|<-|=(?!=))\s*(.*)", re.DOTALL)


def r_assignments(source: str) -> list[tuple[str, str]]:
    """(name, value text) of the top-level ``name <- value`` / ``name = value`` statements of an R
    cell, in order (a name assigned twice: its last value); lines inside brackets or strings
    (the ``a = 1,`` of a multi-line ``list(...)``) are not statements, and comments are dropped."""
    found: dict[str, str] = {}
    depth, quote, current = 0, None, None
    for line in source.splitlines():
        at_top = depth == 0 and quote is None
        depth, quote, code = r_scan(line, depth, quote)
        match = _R_ASSIGNMENT.fullmatch(code) if at_top else None
        if match:
            current = match.group(1).strip("`")
            found.pop(current, None)
            found[current] = match.group(2).strip()
        elif at_top:
            current = None
        elif current is not None:
            found[current] = f"{found[current]} {code.strip()}".strip()
    return list(found.items())


def r_scan(line: str, depth: int, quote: str | None) -> tuple[int, str | None, str]:
    """Bracket depth and open string after one R line, and the line without its comment."""
    escaped = False
    for i, char in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char == "#":
            return depth, quote, line[:i].rstrip()
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
    return depth, quote, line


def type_of(annotation: str, default: str, python: bool) -> str:
    """The annotation papermill read, else (Python) the type of a literal default; "None" = unknown."""
    if annotation not in ("None", "") or not python:
        return annotation
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "None"
    return "None" if value is None else type(value).__name__


# JSON kinds of parameter values, as ``value_kind`` names them.
_KINDS_OF = {
    "int": {"int"},
    "float": {"float", "int"},  # an int is fine for a float
    "str": {"str"},
    "bool": {"bool"},
    **dict.fromkeys(("list", "List", "tuple", "Tuple", "Sequence", "MutableSequence"), {"list"}),
    **dict.fromkeys(("dict", "Dict", "Mapping", "MutableMapping"), {"dict"}),
    **dict.fromkeys(("None", "NoneType"), {"null"}),
}
_ANY = ("Any", "object")


def value_kind(value) -> str:
    """A JSON-like value's kind, in Python's words: bool, int, float, str, list, dict or null."""
    return "null" if value is None else type(value).__name__


@cache
def accepted_kinds(type_name: str) -> frozenset[str] | None:
    """The value kinds a declared type (annotation text, or the type of a literal default)
    accepts; None when any value is fine (no type known, ``None`` default, ``Any``, or a type that
    JSON-like values cannot be checked against, such as ``Path``)."""
    if type_name in ("", "None"):
        return None
    try:
        node = ast.parse(type_name, mode="eval").body
    except SyntaxError:
        return None
    kinds = _kinds(node)
    return None if kinds is None else frozenset(kinds)


def _kinds(node) -> set[str] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # int | None
        left, right = _kinds(node.left), _kinds(node.right)
        return None if left is None or right is None else left | right
    if isinstance(node, ast.Constant) and node.value is None:
        return {"null"}
    if isinstance(node, ast.Subscript):
        base = _name(node.value)
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Optional":
            kinds = _kinds(inner[0])
            return None if kinds is None else kinds | {"null"}
        if base == "Union":
            parts = [_kinds(part) for part in inner]
            return None if any(part is None for part in parts) else set().union(*parts)
        return _KINDS_OF.get(base)
    name = _name(node)
    return None if name in _ANY else _KINDS_OF.get(name)


def _name(node) -> str:
    """``int`` of ``int``, ``List`` of ``typing.List``; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def type_mismatch(type_name: str, value, annotated: bool = True) -> str | None:
    """The given value's kind when the declared type does not accept it, else None. None fits a
    type inferred from a default (``annotated`` false: ``x = 'a'`` often means "or no value"),
    and an annotation only when it admits it (``int | None``, ``Optional[int]``)."""
    kinds = accepted_kinds(type_name)
    kind = value_kind(value)
    return None if kinds is None or kind in kinds or (kind == "null" and not annotated) else kind


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


def known_defaults(nb, language: str) -> dict:
    """Name -> value of each default of a template in ``language`` (``formats.notebook_language``)
    whose value is known before it runs (Python only): a run's effective parameters, in its
    fingerprint, are these with its own parameters on top.

    A default counts when the parameters cell is plain Python, the name's last binding in it is an
    assignment of one name to a literal that papermill would inject as the same value (JSON-like,
    finite numbers, no tuples: ``injectable``) and no later statement of the cell rebinds the name
    or, for a list or dict (which can be changed in place), mentions it at all. Any other default
    (``n = len(x)``, ``opts = {}`` then ``opts.update(...)``) is not known: giving that parameter
    any value is a change.
    """
    source = parameters_source(nb)
    if source is None or language.lower() != "python":
        return {}
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return {}
    known: dict = {}
    for statement in body:
        bound, mentioned = names_in(statement)
        for name in list(known):
            if name in bound or (name in mentioned and isinstance(known[name], (list, dict))):
                del known[name]
        target = literal_target(statement)
        if target is not None:
            try:
                value = ast.literal_eval(statement.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            if injectable(value):
                known[target] = value
    return known


def literal_target(statement) -> str | None:
    """The one name a ``name = value`` or ``name: annotation = value`` statement assigns, else None."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value is not None:
        return statement.target.id
    return None


def names_in(statement) -> tuple[set[str], set[str]]:
    """(names a statement may bind or delete, names it reads), nested scopes included."""
    bound, mentioned = set(), set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name):
            (mentioned if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound, mentioned


def injectable(value) -> bool:
    """Whether a config value equal to ``value`` reaches the notebook as this same Python value:
    None, bool, int, str, finite float, and lists and string-keyed dicts of them (not a tuple,
    which a config can only give as a list)."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(injectable(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and injectable(item) for key, item in value.items())
    return False
