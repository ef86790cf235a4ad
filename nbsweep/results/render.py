"""Render an executed notebook as one HTML file beside it: ``python -m nbsweep.results.render NOTEBOOK HTML``.

Images are inlined and nothing is loaded from the network, so the page opens offline (LaTeX
shows as source). Runs are rendered by their own job right after their notebook is written
(``render_nb``): one exporter per process, built ahead in the warm runner's server so that
forked runs reuse its loaded templates. The command renders one notebook file.
"""

import sys
from functools import cache
from pathlib import Path

from nbsweep.files import write_atomically

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


def render(notebook: Path, html: Path) -> None:
    import nbformat

    render_nb(nbformat.read(notebook, as_version=4), html)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m nbsweep.results.render NOTEBOOK HTML", file=sys.stderr)
        return 2
    notebook, html = map(Path, args)
    try:
        render(notebook, html)
    except Exception as err:  # noqa: BLE001 -- nbconvert and nbformat raise many types for unreadable notebooks
        print(f"nbsweep: cannot render {notebook}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
