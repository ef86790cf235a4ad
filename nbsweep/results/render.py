"""Render executed notebooks as HTML files beside them: ``python -m nbsweep.results.render NOTEBOOK...``.

Images are inlined and nothing is loaded from the network, so the page opens offline (LaTeX
shows as source). Runs are rendered by their own job right after their notebook is written
(``render_nb``): one exporter per process, built ahead in the warm runner's server so that
forked runs reuse its loaded templates. The command renders notebook files that have none
(the target ``nbsweep_renderings``).
"""

import sys
from functools import cache
from pathlib import Path

from nbsweep.files import write_atomically
from nbsweep.layout import RunFiles
from nbsweep.messages import say

TEMPLATE = Path(__file__).parents[1] / "assets" / "offline.html.j2"


@cache
def exporter():
    """The HTML exporter, built once per process (its template environment is the costly part)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_file=str(TEMPLATE), embed_images=True)


def render_nb(nb, html: Path) -> None:
    """Write the rendering of the in-memory notebook ``nb`` to ``html``."""
    body, _ = exporter().from_notebook_node(nb)
    write_atomically(html, body)


def render(notebook: Path) -> None:
    """Render an executed notebook file to its rendering beside it."""
    import nbformat

    render_nb(nbformat.read(notebook, as_version=4), RunFiles(notebook).html)


def main(argv: list[str] | None = None) -> int:
    """Render each notebook named; one that cannot be rendered is a line on stderr (exit status 1)."""
    failed = 0
    for notebook in map(Path, sys.argv[1:] if argv is None else argv):
        try:
            render(notebook)
        except Exception as err:  # noqa: BLE001 -- nbconvert and nbformat raise many types for unreadable notebooks
            say(f"nbsweep: cannot render {notebook}: {type(err).__name__}: {err}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
