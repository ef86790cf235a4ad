"""The modules a Python template imports at its top level, read from its code cells (not run).

What ``preload`` imports when the config names no modules: each code cell's top-level ``import
x`` and ``from x import y`` (and those in the body of a top-level ``try:``, the usual way of
importing an optional package), in the order written, each module once. Relative imports and
``from __future__`` are left out, as are imports inside functions, classes, ``if`` blocks and
``except`` handlers: those may never run. ``from package import name`` counts as ``package``
(``name`` may be a function as well as a submodule). Cells are parsed as the code digest parses
them (``templates.python_tree``: IPython magics and ``!`` lines transformed); a cell that does
not parse contributes nothing.
"""

import ast


def imported_modules(tree: ast.Module) -> list[str]:
    """Modules imported by the top-level statements of one cell's syntax tree, in order."""
    found = []
    for node in tree.body:
        statements = [*node.body, *node.orelse, *node.finalbody] if isinstance(node, ast.Try | ast.TryStar) else [node]
        for statement in statements:
            if isinstance(statement, ast.Import):
                found += [alias.name for alias in statement.names]
            elif isinstance(statement, ast.ImportFrom) and not statement.level and statement.module not in (None, "__future__"):
                found.append(statement.module)
    return found


def top_level_imports(sources, parse) -> tuple[str, ...]:
    """Modules the code cells ``sources`` (their texts, in order) import at top level, each once;
    ``parse`` is the cell parser (source -> syntax tree, or None)."""
    modules: dict[str, None] = {}
    for source in sources:
        tree = parse(source)
        if tree is not None:
            modules.update(dict.fromkeys(imported_modules(tree)))
    return tuple(modules)
