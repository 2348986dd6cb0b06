"""The shape issue 19 asks of the code: no import cycles, backends only behind ``storage/``, one dispatch loop.

The import graph is ``tools/import_graph.py``'s (every import: module level, in functions, under
``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "nbaprops"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "tools" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


import_graph = _tool()


def _sources(*, outside: str = "storage") -> list[Path]:
    """Every module of the package outside ``nbaprops/<outside>/``."""
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] != outside]


def _imported(path: Path) -> set[str]:
    """Every module name ``path`` imports, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _naming(word: str, paths: list[Path]) -> list[str]:
    pattern = re.compile(rf"\b{word}\b")
    return [str(p.relative_to(PACKAGE)) for p in paths if pattern.search(p.read_text(encoding="utf-8"))]


def test_the_import_graph_sees_a_cycle_it_is_shown(tmp_path: Path) -> None:
    """The tool itself: a cycle through a function-level import and one under TYPE_CHECKING are both found."""
    package = tmp_path / "nbaprops"
    (package / "alpha").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "alpha" / "__init__.py").write_text("")
    (package / "alpha" / "one.py").write_text("def f():\n    from nbaprops.beta import two\n")
    (package / "beta.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nbaprops.alpha import one\n"
    )
    edges = import_graph.graph(tmp_path)
    assert import_graph.cycles(edges) == [["nbaprops.alpha.one", "nbaprops.beta"]]
    assert import_graph.cycles(import_graph.package_graph(edges)) == [["alpha", "beta"]]


def test_no_module_imports_another_that_imports_it_back() -> None:
    assert import_graph.cycles(import_graph.graph(REPO / "src")) == []


def test_no_package_imports_another_that_imports_it_back() -> None:
    edges = import_graph.graph(REPO / "src")
    assert import_graph.cycles(import_graph.package_graph(edges)) == []


def test_nothing_outside_storage_imports_the_duckdb_driver() -> None:
    assert [
        str(p.relative_to(PACKAGE))
        for p in _sources()
        if any(name == "duckdb" or name.startswith("duckdb.") for name in _imported(p))
    ] == []


def test_the_pipeline_features_and_systems_type_against_the_seams_not_a_backend() -> None:
    paths = [p for p in _sources() if p.relative_to(PACKAGE).parts[0] in ("pipeline", "features", "systems")]
    assert _naming("DuckDBStorage", paths) == []


def test_no_module_outside_storage_names_a_backend_class() -> None:
    assert _naming("DuckDBStorage", _sources()) == []
    assert _naming("GcpBackend", _sources()) == []


def test_the_coordinator_and_its_workers_have_one_dispatch_loop() -> None:
    """Every backend has a queue: nothing in the dispatch asks (pipeline/refresh.py is checked below)."""
    paths = [PACKAGE / "pipeline" / name for name in ("coordinator.py", "queue_worker.py", "worker.py")]
    assert _naming(r"queue is (not )?None", paths) == []


def test_no_code_asks_whether_a_backend_has_a_queue() -> None:
    assert _naming(r"queue is (not )?None", list(PACKAGE.rglob("*.py"))) == []


_REASON = re.compile(r"#.*\b(extra|heavy|driver|Unix only)\b", re.IGNORECASE)


def _unexplained_function_imports(path: Path, root: Path = PACKAGE) -> list[str]:
    """Imports inside a function of ``path`` with no comment, on the import or the line above it, saying why
    it waits (an optional extra, a heavy library, the embedded driver, a Unix-only module)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for function in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                around = lines[max(node.lineno - 2, 0) : node.end_lineno]
                if not any(_REASON.search(line) for line in around):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_a_function_level_import_says_which_extra_or_heavy_library_it_waits_for(tmp_path: Path) -> None:
    bare = tmp_path / "bare.py"
    bare.write_text(
        "def f():\n    from nbaprops.config import Settings\n\n\ndef g():\n    import lightgbm  # heavy\n"
    )
    assert [s.split(":")[1] for s in _unexplained_function_imports(bare, tmp_path)] == ["2"]
    assert [hit for p in _sources(outside="") for hit in _unexplained_function_imports(p)] == []


def test_the_cli_starts_without_the_prediction_systems() -> None:
    """``nbaprops --help`` (and every command's parsing) loads no model library: 0.37 s of CPU instead of 1.95 s
    when the CLI imported them at start (median of 5). The commands import them when they run."""
    import subprocess

    heavy = ["lightgbm", "sklearn", "scipy", "nbaprops.systems", "nbaprops.pricing", "matplotlib", "fastapi"]
    code = f"import sys, nbaprops.cli.app; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert loaded == "[]"
