"""The modules a Python template imports before it runs anything else, read from its code cells (not run).

What ``preload`` imports when the config names no modules. A preloaded module is imported before
the run's first cell, so only imports that nothing of the template precedes are taken: each code
cell's top-level ``import x`` and ``from x import y`` (and those in the body of a top-level
``try:``, the usual way of importing an optional package), in the order written, each module
once, up to the first statement that could change what an import does (set an environment
variable, change ``sys.path`` or the directory, call anything). What may come before without
stopping the reading: assignments of literal values (the parameters cell), docstrings and the
``%matplotlib`` magic. Relative imports and ``from __future__`` are left out, as are imports
inside functions, classes, ``if`` blocks and ``except`` handlers. ``from package import name``
counts as ``package`` (``name`` may be a function as well as a submodule). Cells are parsed as
the code digest parses them (``templates.python_tree``: IPython magics and ``!`` lines
transformed); a cell that does not parse ends the reading.
"""

import ast


def imported_modules(statements: list[ast.stmt]) -> tuple[list[str], bool]:
    """Modules imported by ``statements`` (top-level ones of a cell) in order, up to the first that
    could change what a later import does; and whether there was none such (reading goes on)."""
    found: list[str] = []
    for statement in statements:
        if isinstance(statement, ast.Import):
            found += [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            if not statement.level and statement.module not in (None, "__future__"):
                found.append(statement.module)
        elif isinstance(statement, ast.Try | ast.TryStar):
            inside, read_on = imported_modules([*statement.body, *statement.orelse, *statement.finalbody])
            found += inside
            if not read_on:
                return found, False
        elif not harmless(statement):
            return found, False
    return found, True


def harmless(statement: ast.stmt) -> bool:
    """An assignment of a literal value, a docstring or ``%matplotlib``: nothing an import could depend on."""
    if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return all(isinstance(target, ast.Name) for target in targets) and literal(statement.value)
    if isinstance(statement, ast.Expr):
        return isinstance(statement.value, ast.Constant) or matplotlib_magic(statement.value)
    return isinstance(statement, ast.Pass)


def literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def matplotlib_magic(node: ast.expr) -> bool:
    """``get_ipython().run_line_magic('matplotlib', ...)``, what IPython makes of ``%matplotlib inline``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "run_line_magic"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "matplotlib"
    )


def top_level_imports(sources, parse) -> tuple[str, ...]:
    """Modules the code cells ``sources`` (their texts, in order) import before anything else runs,
    each once; ``parse`` is the cell parser (source -> syntax tree, or None)."""
    modules: dict[str, None] = {}
    for source in sources:
        tree = parse(source)
        if tree is None:
            break
        found, read_on = imported_modules(tree.body)
        modules.update(dict.fromkeys(found))
        if not read_on:
            break
    return tuple(modules)
