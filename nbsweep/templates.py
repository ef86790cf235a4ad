"""Template notebooks: their code fingerprint, kernel and declared parameters."""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nbformat

from .canonical import digest
from .errors import SweepError
from .parameters import declared


def code_cells(nb) -> list[dict]:
    """What of a notebook counts as code: code cells' source and tags, in order."""
    return [
        {"source": cell.source, "tags": sorted(cell.get("metadata", {}).get("tags", []))}
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


def code_digest(nb) -> str:
    """Hash of the code cells and the kernelspec; outputs, counts, markdown and metadata don't count."""
    kernelspec = nb.metadata.get("kernelspec", {}).get("name")
    return digest({"cells": code_cells(nb), "kernelspec": kernelspec})


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

    @property
    def kernelspec(self) -> str | None:
        return self.nb.metadata.get("kernelspec", {}).get("name")

    @property
    def has_parameters_cell(self) -> bool:
        return any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in self.nb.cells)

    @property
    def language(self) -> str:
        """The notebook's language; hand-made notebooks without any metadata are taken as Python."""
        info = self.nb.metadata.get("language_info", {}).get("name")
        return info or self.nb.metadata.get("kernelspec", {}).get("language") or "python"

    @cached_property
    def declared_parameters(self) -> list[str]:
        """Names assigned in the cell tagged ``parameters`` (empty when its language cannot be read)."""
        return [p.name for p in declared(self.nb, self.kernelspec, self.language) or []]


def read_template(path: str) -> Template:
    """Read a template or explain in one sentence why it cannot be used."""
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise SweepError(f"notebook {path} does not exist") from None
    except Exception as err:  # nbformat raises many types for broken JSON
        raise SweepError(f"notebook {path} is not a readable Jupyter notebook ({type(err).__name__}: {err})") from None
    return Template(path, nb)
