"""The docs stay true to the code: the architecture page names every module, and the README's test command is CI's."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_architecture_page_names_every_module():
    page = (REPO / "docs" / "architecture.md").read_text()
    modules = [p for p in (REPO / "nbsweep").rglob("*.py") if "workflow" not in p.parts and p.name not in ("__init__.py", "__main__.py")]
    assert len(modules) > 40
    assert [str(p.relative_to(REPO)) for p in modules if f"`{p.stem}`" not in page] == []


def test_ci_runs_the_readme_test_command():
    readme, ci = (REPO / "README.md").read_text(), (REPO / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if 'pip install -e ".[test]"' in line and "pytest" in line)
    assert command.strip() in ci
