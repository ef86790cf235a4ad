"""Which files can be templates: notebooks, and the text formats jupytext reads."""

# Text notebooks jupytext reads, for the languages papermill can pass parameters to (and Markdown).
TEXT_EXTENSIONS = (
    ".py",
    ".R",
    ".r",
    ".jl",
    ".scala",
    ".m",
    ".cs",
    ".fs",
    ".fsx",
    ".ps1",
    ".sh",
    ".md",
    ".markdown",
    ".Rmd",
    ".myst",
    ".mystnb",
    ".mnb",
)


def unsupported_extension(path: str) -> str:
    """Why a notebook path names no template nbsweep can read (one phrase)."""
    listed = ", ".join(TEXT_EXTENSIONS)
    return f"notebook {path} is neither a Jupyter notebook (.ipynb) nor a text notebook jupytext reads ({listed})"


def notebook_language(nb) -> str:
    """A notebook's language; hand-made notebooks and scripts without any metadata are taken as Python."""
    metadata = nb.metadata
    return (
        metadata.get("language_info", {}).get("name")
        or metadata.get("kernelspec", {}).get("language")
        or metadata.get("jupytext", {}).get("main_language")
        or "python"
    )
