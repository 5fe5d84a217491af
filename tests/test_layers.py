"""media/ is an image library: the evidence slice uses it, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

DOMAIN = ("inspections", "service", "tests", "scripts")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):  # also imports inside functions
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_media_imports_nothing_from_the_domain_or_the_app() -> None:
    modules = sorted((ROOT / "media").glob("*.py"))
    assert {m.stem for m in modules} >= {"detect", "exif", "derive", "geo", "pipeline"}
    offending = {
        m.name: sorted(n for n in _imports(m) if n.split(".")[0] in DOMAIN) for m in modules
    }
    assert {k: v for k, v in offending.items() if v} == {}
