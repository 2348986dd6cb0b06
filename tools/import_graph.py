"""Print the import cycles of ``src/nbaprops``: between modules and between packages (exit 1 if any).

Every import counts, wherever it is written: module level, inside functions, under ``if TYPE_CHECKING:``. A
package here is a first-level unit of ``nbaprops`` (``storage``, ``pipeline``, ``config``…): a top-level module
is a unit of its own, as DESIGN.md's layout draws them. ``from package import name`` is an edge to the module
``package.name`` when that is a module, else to the package's ``__init__``.

    python tools/import_graph.py [--src src] [--edges]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = "nbaprops"


def module_names(src: Path) -> dict[str, Path]:
    """``dotted name -> file`` of every module under ``src/nbaprops`` (a package is its ``__init__``)."""
    found: dict[str, Path] = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of a relative ``from`` import."""
    if level == 0:
        return module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The nbaprops modules ``name`` imports, anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(_known(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                targets.add(child if child in modules else _known(base, modules))
    targets.discard("")
    targets.discard(name)
    return targets


def _known(dotted: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``dotted`` that is an nbaprops module ("" for anything else)."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return ""


def graph(src: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` over the whole package."""
    modules = module_names(src)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def unit(module: str) -> str:
    """The first-level unit of a module (``nbaprops.storage.gcp.queue`` → ``storage``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for source, targets in edges.items():
        units.setdefault(unit(source), set()).update(unit(t) for t in targets if unit(t) != unit(source))
    units.pop(ROOT, None)  # nbaprops/__init__ re-exports: it sits above every unit, not among them
    for targets in units.values():
        targets.discard(ROOT)
    return units


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted, sorted by first name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        # Iterative, so that a deep chain of imports cannot reach Python's recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(node, iter(sorted(edges.get(node, ()))))]
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _paths(component: Iterable[str], edges: dict[str, set[str]]) -> list[str]:
    members = set(component)
    return [f"    {a} -> {b}" for a in sorted(members) for b in sorted(edges.get(a, ())) if b in members]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--edges", action="store_true", help="print the edges inside each cycle")
    args = parser.parse_args(argv)
    edges = graph(args.src)
    module_cycles = cycles(edges)
    packages = package_graph(edges)
    package_cycles = cycles(packages)
    for title, found, within in (
        ("module cycles", module_cycles, edges),
        ("package cycles", package_cycles, packages),
    ):
        print(f"{title}: {len(found)}")
        for component in found:
            print("  " + " <-> ".join(component))
            if args.edges:
                print("\n".join(_paths(component, within)))
    return 1 if module_cycles or package_cycles else 0


if __name__ == "__main__":
    sys.exit(main())
