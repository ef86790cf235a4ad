"""Executed notebooks side by side, cell by cell: the alignment and the comparison as data.

Every run of a template executes the same cells, so an executed notebook's cells map back to the
template's by construction (``nbsweep.model.cells``): one row per template cell, one column per
notebook. papermill's injected-parameters cell becomes the parameters cell's content (the values
each run got). Notebooks made from other template code (a run executed before the template
changed, a previous notebook) are aligned to the first notebook with nbdime's diff of their cells'
sources. Outputs are normalised for comparison: streams joined, one representation per display
(image, else HTML, else text), memory addresses (``at 0x7f…``) masked, images compared by the
SHA-256 of their bytes.
"""

import base64
import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nbsweep import MIME, layout
from nbsweep.errors import SweepError
from nbsweep.masking import mask
from nbsweep.model.cells import ADDED_TAGS, first_line

IMAGES = ("image/png", "image/jpeg", "image/svg+xml")
TEXTS = ("text/markdown", "text/latex", "text/plain")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Output:
    """One output of a cell, normalised. ``kind``: stream, text, html, image, error, parameters or
    pending (the cell did not execute: an earlier cell failed). ``text`` is what the terminal shows
    and diffs (an image is one line naming its type, size and digest); ``body`` is the HTML of an
    ``html`` output, the bytes of an image, the traceback of an error."""

    kind: str
    text: str
    mime: str = ""
    body: str | bytes = ""
    width: int | None = None
    height: int | None = None

    @cached_property
    def digest(self) -> str:
        """What identical outputs share: a hash of kind, text and body."""
        body = self.body if isinstance(self.body, bytes) else self.body.encode()
        return hashlib.sha256(b"\0".join([self.kind.encode(), self.mime.encode(), self.text.encode(), body])).hexdigest()


@dataclass
class Column:
    """One notebook in a comparison: its ``name`` (a run id, ``<run> (previous)``, or a path)."""

    name: str
    notebook: Path | None
    status: str = ""
    parameters: dict = field(default_factory=dict)


@dataclass
class Row:
    """One template cell: its ``index`` among the template's cells (0-based; None for a cell the
    first notebook lacks, or papermill's injected cell when the template has no parameters cell)
    and, per column, its outputs (None: the notebook has no such cell, or there is no notebook)."""

    index: int | None
    cell_type: str
    source: str
    parameters: bool
    outputs: list[tuple[Output, ...] | None]

    def key(self, column: int) -> str | None:
        """One digest for the cell's outputs in ``column`` (None where it has no such cell)."""
        found = self.outputs[column]
        return None if found is None else hashlib.sha256("".join(o.digest for o in found).encode()).hexdigest()

    def same(self, columns: list[int] | None = None) -> bool:
        chosen = range(len(self.outputs)) if columns is None else columns
        return len({self.key(c) for c in chosen}) <= 1

    def text(self, column: int) -> str:
        """The cell's outputs in ``column`` as text (what the terminal diffs)."""
        found = self.outputs[column]
        return "(no such cell)\n" if found is None else "".join(o.text if o.text.endswith("\n") else o.text + "\n" for o in found)

    def unified(self, a: int, b: int, names: tuple[str, str], most_lines: int | None = None) -> list[str]:
        """A unified diff of the outputs of columns ``a`` and ``b`` as text; with ``most_lines``, of
        at most the first ``most_lines`` lines of each (difflib's time grows with the product of
        the lengths: minutes for outputs of a few hundred thousand lines)."""
        first, second = (self.text(column).splitlines()[:most_lines] for column in (a, b))
        return list(difflib.unified_diff(first, second, *names, lineterm=""))

    def lines(self, column: int) -> int:
        return self.text(column).count("\n")

    def images_same(self) -> bool | None:
        """Whether every column has the same images (by content) in this cell; None if none has one."""
        found = [tuple(o.digest for o in outputs or () if o.kind == "image") for outputs in self.outputs]
        return None if not any(found) else len(set(found)) == 1

    @property
    def title(self) -> str:
        """The cell as a person finds it in the template: "cell 3 (`df.describe()`)"."""
        if self.index is None:
            return "injected parameters" if self.parameters else f"extra cell (`{first_line(self.source)}`)"
        line = "parameters" if self.parameters else f"`{first_line(self.source)}`" if first_line(self.source) else ""
        return f"cell {self.index + 1} ({line})" if line else f"cell {self.index + 1}"


@dataclass
class Comparison:
    columns: list[Column]
    rows: list[Row]

    def differing(self) -> list[Row]:
        return [row for row in self.rows if not row.same()]

    @property
    def same(self) -> bool:
        return not self.differing()

    def varying_parameters(self) -> list[str]:
        """Names of the parameters whose value is not the same in every column."""
        names = dict.fromkeys(name for column in self.columns for name in column.parameters)
        return [n for n in names if len({json.dumps(c.parameters.get(n), sort_keys=True, default=str) for c in self.columns}) > 1]


def joined(text) -> str:
    return "".join(text) if isinstance(text, list) else text or ""


def image_size(mime: str, data: bytes) -> tuple[int | None, int | None]:
    """(width, height) in pixels of a PNG (from its header); (None, None) for other images."""
    if mime == "image/png" and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None, None


def display(data: dict) -> Output:
    """A display or result: its image, else its HTML, else its text (nbsweep's metrics as their text)."""
    plain = _ADDRESS.sub(" at 0x…", joined(data.get("text/plain")))
    if MIME in data:
        return Output("text", plain, MIME)
    for mime in IMAGES:
        if mime in data:
            raw = joined(data[mime])
            body = raw.encode() if mime == "image/svg+xml" else base64.b64decode(raw)
            width, height = image_size(mime, body)
            size = f" {width}x{height}" if width else ""
            return Output("image", f"<{mime}{size} sha256:{hashlib.sha256(body).hexdigest()[:12]}>", mime, body, width, height)
    if "text/html" in data:
        return Output("html", plain, "text/html", _ADDRESS.sub(" at 0x…", joined(data["text/html"])))
    mime = next((m for m in TEXTS if m in data), "text/plain")
    return Output("text", _ADDRESS.sub(" at 0x…", joined(data.get(mime))), mime)


def outputs_of(cell: dict) -> tuple[Output, ...]:
    """A code cell's outputs, normalised (consecutive pieces of one stream joined)."""
    if cell.get("metadata", {}).get("papermill", {}).get("status") == "pending":
        return (Output("pending", "(not executed: an earlier cell failed)"),)
    found: list[Output] = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            text, name = joined(output.get("text")), output.get("name", "stdout")
            if found and found[-1].kind == "stream" and found[-1].mime == name:
                found[-1] = Output("stream", found[-1].text + text, name)
            else:
                found.append(Output("stream", text, name))
        elif kind in ("execute_result", "display_data"):
            found.append(display(output.get("data", {})))
        elif kind == "error":
            trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
            found.append(Output("error", f"{output.get('ename', '')}: {output.get('evalue', '')}", "error", trace))
    return tuple(found)


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def parameters_output(cell: dict) -> tuple[Output, ...]:
    """The injected-parameters cell as the values it set (papermill's comment line dropped)."""
    lines = [line for line in joined(cell.get("source")).splitlines() if line.strip() and not line.startswith("# Parameters")]
    return (Output("parameters", "\n".join(lines)),)


def template_cells(nb: dict) -> list[tuple[dict, tuple[Output, ...]]]:
    """The template's cells of an executed notebook with their outputs; the parameters cell's
    outputs are the values papermill injected (a template without one gets the injected cell itself)."""
    cells = nb.get("cells", [])
    injected = next((c for c in cells if "injected-parameters" in tags(c)), None)
    has_parameters_cell = any("parameters" in tags(c) for c in cells)
    found = []
    for cell in cells:
        if cell is injected and not has_parameters_cell:
            found.append((cell, parameters_output(cell)))
        elif ADDED_TAGS.isdisjoint(tags(cell)):
            is_parameters = "parameters" in tags(cell) and injected is not None
            outputs = parameters_output(injected) if is_parameters else outputs_of(cell) if cell.get("cell_type") == "code" else ()
            found.append((cell, outputs))
    return found


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_bytes())


def sources(cells: list[tuple[dict, tuple]]) -> list[str]:
    return [joined(cell.get("source")) for cell, _ in cells]


def alignment(reference: list[str], other: list[str]) -> list[tuple[int | None, int | None]]:
    """Pairs (reference cell, other cell) in order, None on the side that lacks a cell: identity
    when the sources are the same, else from nbdime's diff of the two cell lists."""
    if reference == other:
        return [(i, i) for i in range(len(reference))]
    import nbdime
    from nbformat.v4 import new_code_cell, new_notebook

    def notebook(texts):
        return new_notebook(cells=[new_code_cell(text) for text in texts])

    ops = next((d.diff for d in nbdime.diff_notebooks(notebook(reference), notebook(other)) if d.key == "cells"), [])
    pairs: list[tuple[int | None, int | None]] = []
    base = theirs = 0
    for op in sorted(ops, key=lambda d: (d.key, d.op != "addrange")):
        while base < op.key:
            pairs.append((base, theirs))
            base, theirs = base + 1, theirs + 1
        if op.op == "addrange":
            pairs += [(None, theirs + k) for k in range(len(op.valuelist))]
            theirs += len(op.valuelist)
        elif op.op == "removerange":
            pairs += [(base + k, None) for k in range(op.length)]
            base += op.length
        elif op.op == "patch":
            pairs.append((base, theirs))
            base, theirs = base + 1, theirs + 1
    while base < len(reference):
        pairs.append((base, theirs))
        base, theirs = base + 1, theirs + 1
    return pairs


def masked(outputs: tuple[Output, ...], secrets: list[str]) -> tuple[Output, ...]:
    """Outputs with the values of secrets replaced by ``***`` (``nbsweep.masking``)."""
    return tuple(
        Output(o.kind, mask(o.text, secrets), o.mime, o.body if isinstance(o.body, bytes) else mask(o.body, secrets), o.width, o.height)
        for o in outputs
    )


def compare(columns: list[Column], secrets: list[str] | None = None) -> Comparison:
    """Align the columns' notebooks (a column without one has no outputs) and compare them, with
    the values of ``secrets`` masked in every output."""
    read = []
    for column in columns:
        nb = read_notebook(column.notebook) if column.notebook else None
        if nb is not None and not column.parameters:
            column.parameters = nb.get("metadata", {}).get("papermill", {}).get("parameters") or {}
        cells = template_cells(nb) if nb is not None else None
        read.append([(cell, masked(outputs, secrets)) for cell, outputs in cells] if cells and secrets else cells)
    # the template's cells as the first current notebook has them (a previous one may be older)
    order = sorted(range(len(columns)), key=lambda c: columns[c].status == "previous")
    reference = next((read[c] for c in order if read[c] is not None), None)
    if reference is None:
        return Comparison(columns, [])
    by_reference, index = [], 0
    for cell, _ in reference:
        injected = "injected-parameters" in tags(cell)
        parameters = injected or "parameters" in tags(cell)
        by_reference.append(
            Row(None if injected else index, cell.get("cell_type", "code"), joined(cell.get("source")), parameters, [None] * len(columns))
        )
        index += not injected
    rows = list(by_reference)
    for c, cells in enumerate(read):
        if cells is None:
            continue
        after = None  # the row an extra cell of this notebook follows
        for mine, theirs in alignment(sources(reference), sources(cells)):
            if mine is not None:
                after = by_reference[mine]
                if theirs is not None:
                    after.outputs[c] = cells[theirs][1]
                continue
            cell, outputs = cells[theirs]
            extra = Row(None, cell.get("cell_type", "code"), joined(cell.get("source")), False, [None] * len(columns))
            extra.outputs[c] = outputs
            rows.insert(rows.index(after) + 1 if after else 0, extra)
            after = extra
    return Comparison(columns, rows)


def notebook_of(target: Path) -> Path | None:
    """A run's executed notebook: its target, else its failed copy (None if it has neither)."""
    failed = layout.RunFiles(target).failed
    return target if target.is_file() else failed if failed.is_file() else None


def checked(path: Path, name: str, fix: str = "name an executed notebook or a run as `nbsweep status` lists it") -> Path:
    """``path`` if it holds a Jupyter notebook; else SweepError naming it (not JSON, not a notebook) and the ``fix``."""
    import nbformat

    try:
        nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=nbformat.NO_CONVERT)
    except OSError as err:
        raise SweepError(f"{name} cannot be read ({path}: {err.strerror or err}); {fix}") from None
    except ValueError:  # UnicodeDecodeError, nbformat's NotJSONError
        raise SweepError(f"{name} is not a Jupyter notebook ({path} is not JSON); {fix}") from None
    except (KeyError, AttributeError, TypeError):
        raise SweepError(f"{name} is not a Jupyter notebook ({path} is JSON, but no notebook); {fix}") from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        raise SweepError(f"{name} is not a Jupyter notebook ({path}: {err.message}); {fix}") from None
    return path


def column_named(name: str, output_dir: str, runs) -> Column:
    """The column of a run named as ``nbsweep status`` lists it (``template/label``, among ``runs``:
    (template, label) pairs), or of a notebook file's path; its notebook checked to be one."""
    if name.endswith(".ipynb") and Path(name).is_file():
        return Column(name, checked(Path(name), name), "failed" if name.endswith(".failed.ipynb") else "")
    template, _, label = name.partition("/")
    target = layout.target(output_dir, template, label)
    named = template and label and "/" not in label  # not a template's folder, nor a path into a run's
    if not named or ((template, label) not in runs and not target.parent.is_dir()):
        raise SweepError(
            f"{name} names no run of the config and no notebook file; name a run as `nbsweep status` lists it (template/label) or an executed notebook"
        )
    notebook = notebook_of(target)
    if notebook is None:
        raise SweepError(f"run {name} has no executed notebook yet ({target}); run snakemake first")
    damaged = f"run {name}'s notebook"
    return Column(
        name, checked(notebook, damaged, "delete it and run snakemake to execute the run again"), "failed" if notebook != target else ""
    )


def previous_columns(name: str, output_dir: str, runs) -> list[Column]:
    """The run's previous notebook (kept when it re-executed over other settings, or its rerun failed) and its current one."""
    current = column_named(name, output_dir, runs)
    previous = layout.RunFiles(current.notebook.with_name(current.notebook.name.replace(".failed.ipynb", ".ipynb"))).previous
    if not previous.is_file():
        raise SweepError(
            f"run {name} has no previous notebook ({previous}): one is kept when a run re-executes with other parameters, "
            "template code or inputs, or when its rerun fails"
        )
    return [Column(f"{name} (previous)", checked(previous, f"run {name}'s previous notebook", "delete it"), "previous"), current]
