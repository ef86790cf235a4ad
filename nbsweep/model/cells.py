"""An executed notebook's cells in the template's terms.

papermill adds cells to what it executes: the ``injected-parameters`` cell after the parameters
cell, and on failure two ``papermill-error-cell-tag`` banners (one at the top, one just before
the failing cell). Skipping those maps an executed cell to the template's cell it came from, so
a failure is named as a person sees the template: "cell 7 (`model.fit(X, y)`)".
"""

ADDED_TAGS = frozenset({"injected-parameters", "papermill-error-cell-tag"})
LINE_CHARS = 60


def added_by_papermill(cell) -> bool:
    return not ADDED_TAGS.isdisjoint(cell.get("metadata", {}).get("tags", []))


def first_line(source) -> str:
    """The first non-blank line of a cell's source, shortened to ``LINE_CHARS``."""
    text = "".join(source) if isinstance(source, list) else source or ""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"


def template_cell(nb, index: int) -> tuple[int | None, str]:
    """(0-based index among the template's cells, first line) of executed cell ``index``;
    the index is None for a cell papermill added."""
    cell = nb.cells[index]
    if added_by_papermill(cell):
        return None, "injected parameters" if "injected-parameters" in cell.get("metadata", {}).get("tags", []) else ""
    return sum(not added_by_papermill(c) for c in nb.cells[:index]), first_line(cell.get("source", ""))


def place(error: dict) -> str:
    """Where a recorded failure happened, for a person: "in cell 7 (`x = f()`)" (1-based)."""
    index, line = error.get("cell_index"), error.get("cell_line") or ""
    if isinstance(index, int) and not isinstance(index, bool):
        return f"in cell {index + 1} (`{line}`)" if line else f"in cell {index + 1}"
    if error.get("ename") == "MissingOutput":  # nbsweep.execution.run_io: every cell ran
        return "after its last cell"
    if line == "injected parameters":
        return "in papermill's injected-parameters cell"
    return "before any cell ran"
