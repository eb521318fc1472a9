"""The design lives in the repository: every reference to it points at a file a clone has."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / name for name in ("README.md", "pyproject.toml", "Makefile")] + [
    path for folder in ("shared", "services", "tests", "bench", "deploy", "docs")
    for path in (REPO / folder).rglob("*") if path.suffix in {".py", ".md", ".toml", ".sh", ".js", ".html"}
    and "node_modules" not in path.parts]  # installed packages' own docs (tests/asyncapi) are not ours
# Spelled in two parts so that this file does not match itself.
OUTSIDE = ("../" + "shared", "ARCHITECTURE" + ".md", "PERFORMANCE" + ".md")


def test_no_reference_points_outside_the_repository():
    found = [f"{path.relative_to(REPO)}: {word}" for path in SOURCES for word in OUTSIDE
             if word in path.read_text(errors="replace")]
    assert found == []


def test_every_docs_file_referenced_exists():
    referenced = {match for path in SOURCES
                  for match in re.findall(r"docs/[\w-]+\.md", path.read_text(errors="replace"))}
    assert referenced and all((REPO / name).is_file() for name in referenced), referenced
