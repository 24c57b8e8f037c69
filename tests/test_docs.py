"""The docs cite what exists: every test (`tests/test_x.py::test_y`, or a backticked
`test_y`) and every file path they name (`gateway/commands/presence.py`). A rename or a removal
that leaves a doc behind fails here."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("*/README.md")],
    key=lambda p: str(p),
)
TEST_REF = re.compile(r"(tests/test_\w+\.py)((?:::\w+)*)")
BARE_TEST = re.compile(r"`(test_\w+)`")
PATH = re.compile(
    r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|sql|js|json|yml|yaml|cql|toml|md|sh|html|css|d\.ts))`"
)


@cache
def names_in(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r"(?:def|class) (\w+)", path.read_text()))


@cache
def all_test_names() -> frozenset[str]:
    return frozenset(n for f in ROOT.glob("tests/*.py") for n in names_in(f))


def exists(path: str, folder: Path) -> bool:
    """In the repository (from its root, or from the doc's folder), or in an installed library
    the doc quotes (`mode/threads.py`)."""
    if (ROOT / path).exists() or (folder / path).exists():
        return True
    first = path.split("/", 1)[0]
    if first.isupper():
        return True  # a placeholder, such as DIR/bench-users.json
    spec = importlib.util.find_spec(first) if first.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(p).parent / path).exists() for p in spec.submodule_search_locations)


def test_every_cited_test_and_file_exists() -> None:
    missing: list[str] = []
    for doc in DOCS:
        text = doc.read_text()
        where = doc.relative_to(ROOT)
        for m in TEST_REF.finditer(text):
            test_file = ROOT / m.group(1)
            if not test_file.exists():
                missing.append(f"{where}: {m.group(0)}")
                continue
            for name in filter(None, m.group(2).split("::")):
                if name not in names_in(test_file):
                    missing.append(f"{where}: {m.group(0)}")
        for m in BARE_TEST.finditer(text):
            if m.group(1) not in all_test_names():
                missing.append(f"{where}: {m.group(1)}")
        for m in PATH.finditer(text):
            if not exists(m.group(1), doc.parent):
                missing.append(f"{where}: {m.group(1)}")
    assert missing == []
