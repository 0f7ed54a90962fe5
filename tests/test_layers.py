"""The import diagram of docs/ARCHITECTURE.md, enforced: import-linter checks the contracts in
pyproject.toml on the source tree, every module of the package root has a layer, and no modules
import each other in a circle (TYPE_CHECKING imports included).

The checks read the source tree through links laid out as the package installs, so they run the
same from a wheel, an editable install or no install. To see import-linter's own report from a
checkout (plain `lint-imports` cannot follow the package-dir mapping of an editable install):

    python tests/test_layers.py
"""

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE = "alexnet_export"


def _source_tree(into: Path) -> Path:
    """The package as it installs (pyproject's package-dir mapping), as links to the repository's folders,
    so the check reads this checkout whether the package is installed from it or not."""
    folders = PYPROJECT["tool"]["setuptools"]["package-dir"]
    top = into / PACKAGE
    top.mkdir()
    for entry in (ROOT / folders[PACKAGE]).iterdir():
        if entry.suffix == ".py" or (entry / "__init__.py").is_file():
            (top / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for package, folder in folders.items():
        if package != PACKAGE:
            (top / package.split(".")[-1]).symlink_to(ROOT / folder, target_is_directory=True)
    return into


def _layered_modules() -> set[str]:
    contract = next(c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return {name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")}


def _circles(tree: Path) -> list[list[str]]:
    """The import circles among the package's modules in `tree`: each a list of modules that reach
    one another (Tarjan's strongly connected components over grimp's graph of direct imports)."""
    script = (
        "import grimp, json, sys\n"
        f"graph = grimp.build_graph({PACKAGE!r}, cache_dir=None)\n"
        "edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}\n"
        "json.dump(edges, sys.stdout)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, cwd=tree)
    edges = json.loads(result.stdout)
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(module: str) -> None:  # recursive: the package is a few hundred modules deep at most
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return circles


def _lint(lint: str, tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([lint, str(ROOT / "pyproject.toml"), "--no-cache"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, cwd=tree)


def test_every_module_of_the_package_root_has_a_layer():
    root_modules = {f"{PACKAGE}.{p.stem}" for p in (ROOT / "core").glob("*.py") if p.stem != "__init__"}
    packages = {name for name in PYPROJECT["tool"]["setuptools"]["packages"] if name.count(".") == 1}
    assert root_modules | packages == _layered_modules() - {PACKAGE}


def test_imports_point_one_way(tmp_path):
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    tree = _source_tree(tmp_path)
    result = _lint(lint, tree)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check can fail: a runtime module that imports the exporter is reported."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    tree = _source_tree(tmp_path)
    (tree / PACKAGE / "runtimes").unlink()
    shutil.copytree(ROOT / "runtimes", tree / PACKAGE / "runtimes", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / PACKAGE / "runtimes" / "upward.py").write_text("from alexnet_export.exporter import pipeline\n")
    result = _lint(lint, tree)
    assert result.returncode != 0
    assert "alexnet_export.runtimes.upward -> alexnet_export.exporter.pipeline" in result.stdout


def test_no_modules_import_each_other_in_a_circle(tmp_path):
    assert _circles(_source_tree(tmp_path)) == []


def test_a_circle_is_found(tmp_path):
    """The check can fail: two modules of runtimes/ that import each other (one only for type checking)."""
    tree = _source_tree(tmp_path)
    (tree / PACKAGE / "runtimes").unlink()
    shutil.copytree(ROOT / "runtimes", tree / PACKAGE / "runtimes", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / PACKAGE / "runtimes" / "first.py").write_text("from alexnet_export.runtimes import second\n")
    (tree / PACKAGE / "runtimes" / "second.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from alexnet_export.runtimes import first\n")
    assert _circles(tree) == [[f"{PACKAGE}.runtimes.first", f"{PACKAGE}.runtimes.second"]]


if __name__ == "__main__":  # import-linter's report and the circles, for a checkout with any kind of install
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        linked = _source_tree(Path(folder))
        lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
        report = _lint(lint_imports, linked)
        print(report.stdout + report.stderr)
        found = _circles(linked)
        print("\n".join(" <-> ".join(circle) for circle in found) or "No import circles.")
    sys.exit(report.returncode or bool(found))
