"""The README's table of third-party functions tested names tests that exist."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_readme_table_names_existing_tests():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Third-party functions tested"):]
    section = section[:section.index("\n## ")]
    rows = re.findall(r"^\| [^|]+ \| [^|]+ \| `(tests/[\w./]+\.py)::(test_\w+)` \|$", section, re.MULTILINE)
    assert len(rows) >= 10
    for path, name in rows:
        tree = ast.parse((ROOT / path).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, f"{path}::{name}"
