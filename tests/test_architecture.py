"""The package layout: imports point one way, no module imports in a circle, modules stay small.

The order of the floors is the README's package map ("Development"): a package may import
from its own floor's ground and from the floors below it, never from a floor above.  Every
import counts, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gridmap"

#: Each top-level room of gridmap and the rooms it may import from (besides itself).
#: The ground floor (errors, settings, dates, labels, resources) may import only from the ground floor.
GROUND = {"errors", "settings", "dates", "labels", "resources", "json_text"}
MAY_IMPORT: dict[str, set[str]] = {
    "ground": set(),
    "geo": {"ground"},
    "storage": {"ground", "geo"},
    "security": {"ground", "geo", "storage"},
    "issues": {"ground", "geo", "storage", "security"},
    "coverage": {"ground", "geo", "storage", "security", "issues"},
    "analytics": {"ground", "geo", "storage", "security", "issues"},
    "interop": {"ground", "geo", "storage", "security", "issues", "coverage", "analytics"},
    "maps": {"ground", "geo", "storage", "security", "issues", "coverage", "analytics"},
    "ops": {"ground", "geo", "storage", "security"},
    "core": {"ground", "geo", "storage", "security", "issues", "coverage", "analytics", "interop", "maps", "ops"},
    "demo": {"ground", "geo", "storage", "security", "issues", "coverage", "analytics", "core"},
    "web": {"ground", "geo", "storage", "security", "issues", "coverage", "analytics", "interop", "maps",
            "ops", "core"},
    "cli": {"ground", "geo", "storage", "security", "issues", "coverage", "analytics", "interop", "maps",
            "ops", "core", "demo", "web"},
    "package": {"web"},  # gridmap/__init__.py: create_app, imported lazily
}

#: No module of the project grows past this many lines.
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    return "ground" if parts[1] in GROUND else parts[1]


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """The gridmap modules an ``from … import …`` statement names (relative imports included)."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    if not target.startswith("gridmap"):
        return []
    found = []
    for alias in node.names:
        candidate = f"{target}.{alias.name}"
        if module_path(candidate) is not None:
            found.append(candidate)
        else:
            found.append(target)
    return found


def module_path(module: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the gridmap modules it imports, anywhere in its body."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in source_files():
        module = module_name(path)
        graph[module]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                graph[module].update(resolve(module, node, path.name == "__init__.py"))
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name.startswith("gridmap"))
        graph[module].discard(module)
    return graph


def test_every_room_is_known():
    rooms = {room_of(m) for m in import_graph()}
    assert rooms <= set(MAY_IMPORT), f"add {sorted(rooms - set(MAY_IMPORT))} to MAY_IMPORT and the README's map"


def test_imports_point_one_way():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if room_of(target) != room_of(module) and room_of(target) not in MAY_IMPORT[room_of(module)]
    )
    assert wrong == []


def test_nothing_outside_demo_imports_demo():
    importers = sorted(
        module for module, targets in import_graph().items()
        if room_of(module) not in {"demo", "cli"} and any(room_of(t) == "demo" for t in targets)
    )
    assert importers == []


def test_no_module_imports_itself_through_a_circle():
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    # A package's __init__ re-exporting its own modules is not a circle of the design.
    circles = [c for c in circles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert circles == []


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_module_stays_readable(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines: split it by the questions it answers"


def test_the_core_never_imports_flask():
    flask_users = sorted(
        module_name(path) for path in source_files()
        if room_of(module_name(path)) not in {"web", "cli", "package"}
        and any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] in {"flask", "flask_babel"} for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in {"flask", "flask_babel"})
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert flask_users == []


#: An issue-number tag such as "(#8)" in a comment or docstring (not a colour such as #1f77b4).
TICKET_TAG = re.compile(r"(?<![\w&])#\d{1,3}\b(?![0-9a-fA-F])")


def test_comments_say_why_not_which_ticket():
    tagged = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if TICKET_TAG.search(line)
    ]
    assert tagged == []


#: The same tag in a style sheet, script or template, where colours such as #333 are common: "(#8)".
TICKET_TAG_IN_ASSETS = re.compile(r"\(#\d{1,4}\)")


def test_style_sheets_scripts_and_templates_carry_no_ticket_tags():
    files = [*PACKAGE.glob("static/*.css"), *PACKAGE.glob("static/*.js"), *PACKAGE.parent.glob("templates/**/*.html")]
    assert len(files) > 10
    tagged = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if TICKET_TAG_IN_ASSETS.search(line)
    ]
    assert tagged == []
