"""Template notebooks: how they are read, their code fingerprint, kernel and declared parameters.

A template is a Jupyter notebook (``.ipynb``) or a text notebook that jupytext reads (a
percent-format ``.py`` or ``.R`` script, a MyST or jupytext Markdown file, ...): converted in
memory, it is executed and fingerprinted exactly like the ``.ipynb`` it stands for. A template is
read once per use, and must be a regular file of at most 50 MB (``MAX_TEMPLATE_BYTES``): a FIFO, a
device or a symlink to ``/dev/zero`` is refused without being read.

The code digest (version ``CODE_DIGEST_VERSION``) covers every code cell in order, its tags, and
the kernelspec name; outputs, execution counts, markdown and metadata do not count. A Python cell
counts by its parsed code (its syntax tree, docstrings included, positions left out), so comments,
blank lines and reformatting (black, ruff) change nothing; a cell with IPython magics or ``!``
lines is parsed after IPython's own input transformation; a cell that still does not parse, and a
cell in any other language, counts by its text. A cell without code (blank, or only comments) and
without tags counts as nothing. Version 1 (earlier nbsweep) hashed every code cell's text:
``legacy_code_digest`` keeps it, for ``nbsweep accept`` to recognise notebooks whose template
code is unchanged although their recorded digest is of the older kind.
"""

import ast
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nbformat

from nbsweep.canonical import digest
from nbsweep.errors import SweepError
from nbsweep.files import UnusableFile, read_regular
from nbsweep.model.cells import added_by_papermill, first_line
from nbsweep.model.formats import TEXT_EXTENSIONS, notebook_language, unsupported_extension
from nbsweep.model.imports import top_level_imports
from nbsweep.model.parameters import Parameter, declared, known_defaults

CODE_DIGEST_VERSION = 2
# A template is code and prose: a bigger file is data, a mistake or a device, refused without reading it.
MAX_TEMPLATE_BYTES = 50 * 2**20


def python_tree(source: str) -> ast.Module | None:
    """A Python cell's syntax tree: as written, else after IPython's transformation of magics and
    ``!`` lines; None when it does not parse either way."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # noqa: BLE001 -- no IPython, or input it cannot transform: the text counts
        return None


def tree_form(node):
    """A syntax tree as JSON-like data that is the same on every Python version nbsweep supports:
    node type and fields, with empty fields (those later versions add) and positions left out;
    constants as type and ``repr`` (so ``1``, ``1.0`` and ``True`` differ); string ``kind`` (the
    ``u`` prefix) is formatting."""
    if isinstance(node, ast.Constant):
        return ["Constant", [type(node.value).__name__, repr(node.value)]]
    if isinstance(node, ast.AST):
        fields = {name: tree_form(value) for name, value in ast.iter_fields(node) if value is not None and value != []}
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [tree_form(item) for item in node]
    return node  # identifiers, operator-free ints (ImportFrom.level)


def code_form(source: str, language: str):
    """What of one cell's source counts: its syntax tree (Python) or its text; None for no code."""
    if language == "python":
        tree = python_tree(source)
        if tree is not None:
            return tree_form(tree.body) if tree.body else None
    return source if source.strip() else None


def code_cells(nb) -> list[dict]:
    """What of a notebook counts as code: each code cell's code form and tags, in order."""
    language = notebook_language(nb)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        code, tags = code_form(source, language), sorted(cell.get("metadata", {}).get("tags", []))
        if code is not None or tags:
            cells.append({"code": code, "tags": tags})
    return cells


def counted_cells(nb) -> list[tuple[int, object]]:
    """(index among the notebook's cells that papermill did not add, what of it counts) of each
    cell that counts as code (``code_cells``)."""
    language = notebook_language(nb)
    found = []
    for index, cell in enumerate(cell for cell in nb.cells if not added_by_papermill(cell)):
        if cell.cell_type != "code":
            continue
        source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        code, tags = code_form(source, language), sorted(cell.get("metadata", {}).get("tags", []))
        if code is not None or tags:
            found.append((index, [code, tags]))
    return found


def changed_cell(template_nb, executed_nb) -> str:
    """Where the template's code first differs from what an executed notebook ran, as a person
    sees the template: "cell 3 (`y = x * 2`)" (1-based); "" when no cell differs (the kernelspec did)."""
    now, then = counted_cells(template_nb), counted_cells(executed_nb)
    for (index, code), (_, ran) in zip(now, then, strict=False):
        if code != ran:
            return f"cell {index + 1} (`{first_line(template_nb.cells[index].source)}`)"
    if len(now) > len(then):
        index = now[len(then)][0]
        return f"cell {index + 1} (`{first_line(template_nb.cells[index].source)}`)"
    if len(then) > len(now):
        return f"a cell after cell {now[-1][0] + 1} was removed" if now else "its code cells were removed"
    return ""


def code_digest(nb) -> str:
    """Hash of the code cells and the kernelspec; outputs, counts, markdown, metadata and formatting don't count."""
    kernelspec = nb.metadata.get("kernelspec", {}).get("name")
    return digest({"version": CODE_DIGEST_VERSION, "cells": code_cells(nb), "kernelspec": kernelspec})


def legacy_code_digest(nb) -> str:
    """The code digest of nbsweep before version 2: every code cell's text and tags, and the kernelspec."""
    cells = [
        {"source": cell.source, "tags": sorted(cell.get("metadata", {}).get("tags", []))} for cell in nb.cells if cell.cell_type == "code"
    ]
    return digest({"cells": cells, "kernelspec": nb.metadata.get("kernelspec", {}).get("name")})


@dataclass(frozen=True)
class Template:
    """A template notebook read once per invocation."""

    path: str
    nb: nbformat.NotebookNode

    @cached_property
    def stem(self) -> str:
        return Path(self.path).stem

    @cached_property
    def code_digest(self) -> str:
        return code_digest(self.nb)

    @cached_property
    def known_defaults(self) -> dict:
        """The defaults whose value is known before a run (``parameters.known_defaults``): part of its effective parameters."""
        return known_defaults(self.nb, self.language)

    @property
    def kernelspec(self) -> str | None:
        return self.nb.metadata.get("kernelspec", {}).get("name")

    @cached_property
    def parameters_cells(self) -> list[int]:
        """0-based indices of the cells tagged ``parameters`` (papermill injects after the first)."""
        return [i for i, cell in enumerate(self.nb.cells) if "parameters" in cell.get("metadata", {}).get("tags", [])]

    @property
    def has_parameters_cell(self) -> bool:
        return bool(self.parameters_cells)

    def check_one_parameters_cell(self) -> None:
        """Refuse a second cell tagged ``parameters``: it would run after the injected values and overwrite them."""
        if len(self.parameters_cells) > 1:
            numbers = [str(i + 1) for i in self.parameters_cells]
            listed = ", ".join(numbers[:-1]) + f" and {numbers[-1]}"
            raise SweepError(
                f"{self.path} has {len(numbers)} cells tagged 'parameters' (cells {listed}, counting from 1), so the later ones "
                "would overwrite the injected values; keep the tag on one cell"
            )

    @property
    def language(self) -> str:
        return notebook_language(self.nb)

    @cached_property
    def imports(self) -> tuple[str, ...]:
        """Modules its code cells import at top level (``nbsweep.model.imports``); none unless it is Python."""
        if self.language != "python":
            return ()
        cells = [cell.source for cell in self.nb.cells if cell.cell_type == "code"]
        return top_level_imports(["".join(source) if isinstance(source, list) else source for source in cells], python_tree)

    @cached_property
    def declarations(self) -> list[Parameter] | None:
        """What the cell tagged ``parameters`` declares; None when nbsweep cannot read its language
        (``nbsweep.model.parameters.DECLARING_LANGUAGES``)."""
        return declared(self.nb, self.kernelspec, self.language)

    @property
    def declared_parameters(self) -> list[str] | None:
        """Names assigned in the cell tagged ``parameters``; None when its language cannot be read."""
        return None if self.declarations is None else [p.name for p in self.declarations]


PATH_FIX = "fix the 'notebook' path"


def read_notebook(path: str) -> nbformat.NotebookNode:
    """A template as a notebook: an ``.ipynb`` as it is, a text notebook converted by jupytext in
    memory, parsed from one read of the file (so what is hashed is what is executed). Anything but a
    regular file of at most ``MAX_TEMPLATE_BYTES`` is refused unread. Raises FileNotFoundError,
    SweepError (not a file, too large, extension, jupytext missing) or the readers' own errors."""
    suffix = Path(path).suffix
    if suffix != ".ipynb" and suffix not in TEXT_EXTENSIONS:
        raise SweepError(f"{unsupported_extension(path)}; {PATH_FIX}")
    try:
        text = read_regular(path, MAX_TEMPLATE_BYTES).decode("utf-8")
    except UnusableFile as err:
        raise SweepError(f"notebook {path} {err.reason}; {PATH_FIX}") from None
    if suffix == ".ipynb":
        return nbformat.reads(text, as_version=4)
    try:
        import jupytext
    except ImportError:
        raise SweepError(f"notebook {path} is a text notebook, which needs jupytext; install it (pip install jupytext)") from None
    return jupytext.reads(text, fmt={"extension": suffix})


def read_template(path: str) -> Template:
    """Read a template or explain in one sentence why it cannot be used."""
    try:
        nb = read_notebook(path)
    except SweepError:
        raise
    except FileNotFoundError:
        raise SweepError(f"notebook {path} does not exist; {PATH_FIX}") from None
    except Exception as err:  # nbformat and jupytext raise many types for broken files
        kind = "Jupyter notebook" if path.endswith(".ipynb") else "text notebook"
        raise SweepError(
            f"notebook {path} is not a readable {kind} ({type(err).__name__}: {err}); "
            f"repair it (restore it, or open and save it in Jupyter) or {PATH_FIX}"
        ) from None
    return Template(path, nb)
