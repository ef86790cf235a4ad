"""Render an executed notebook as one HTML file: ``python -m nbsweep.render NOTEBOOK HTML``.

Images are inlined and nothing is loaded from the network, so the page opens offline (LaTeX
shows as source). One of these runs per notebook: it imports nbconvert and nothing else heavy.
"""

import sys
from pathlib import Path

from .files import write_atomically

TEMPLATE = Path(__file__).parent / "assets" / "offline.html.j2"


def render(notebook: Path, html: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_file=str(TEMPLATE), embed_images=True).from_filename(str(notebook))
    write_atomically(html, body)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m nbsweep.render NOTEBOOK HTML", file=sys.stderr)
        return 2
    notebook, html = map(Path, args)
    try:
        render(notebook, html)
    except Exception as err:  # nbconvert and nbformat raise many types for unreadable notebooks
        print(f"nbsweep: cannot render {notebook}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
