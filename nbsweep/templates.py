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
        {"source": cell.source, "tags": sorted(cell.get("metadata", {}).get("tags", []))} for cell in nb.cells if cell.cell_type == "code"
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
