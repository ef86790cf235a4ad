"""What nbsweep's HTML pages share: the document around a body, with its stylesheet and script
inline (a page opens offline from ``file://``), escaping, data embedded for the script, links."""

import html
import json
import math
import os
from pathlib import Path
from urllib.parse import quote

ASSETS = Path(__file__).parents[1] / "assets"


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def href(path: str | None, base: Path) -> str | None:
    """``path`` as a link from a page in folder ``base``."""
    return quote(Path(os.path.relpath(path, base)).as_posix()) if path else None


def finite(value):
    """``value`` with NaN and infinities (JSON has none) as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [finite(item) for item in value]
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    return value


def embedded(data) -> str:
    """``data`` as JSON that is safe inside a ``<script type="application/json">`` element."""
    return json.dumps(finite(data), ensure_ascii=False, allow_nan=False, default=str).replace("<", "\\u003c")


def document(title: str, assets: str, body: str) -> str:
    """A whole page: ``assets``.css in its head, ``body``, then ``assets``.js; ``title`` is text."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="nbsweep">
<title>{esc(title)}</title>
<style>
{(ASSETS / f"{assets}.css").read_text(encoding="utf-8")}</style>
</head>
<body>
{body}
<script>
{(ASSETS / f"{assets}.js").read_text(encoding="utf-8")}</script>
</body>
</html>
"""
