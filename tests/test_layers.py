"""The import diagram of docs/ARCHITECTURE.md, enforced: import-linter checks the contracts in
pyproject.toml on the source tree, and every module of the package root has a layer."""

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
    for module in (ROOT / folders[PACKAGE]).glob("*.py"):
        (top / module.name).symlink_to(module)
    for package, folder in folders.items():
        if package != PACKAGE:
            (top / package.split(".")[-1]).symlink_to(ROOT / folder, target_is_directory=True)
    return into


def _layered_modules() -> set[str]:
    contract = next(c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return {name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")}


def _lint(lint: str, tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([lint, str(ROOT / "pyproject.toml"), "--no-cache"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, cwd=tree)


def test_every_module_of_the_package_root_has_a_layer():
    root_modules = {f"{PACKAGE}.{p.stem}" for p in (ROOT / "core").glob("*.py") if p.stem != "__init__"}
    packages = {f"{PACKAGE}.{name.split('.')[-1]}" for name in PYPROJECT["tool"]["setuptools"]["packages"][1:]}
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
