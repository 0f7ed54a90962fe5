"""The layout holds its sizes as the project grows: every source module at most 300 lines (tests and
benchmarks aside), every source folder at most 15 modules (a concept that grows gets a package of its
own), README.md a front page of at most 350; the details live on docs/ pages. No module but a
package's `__init__.py` (its public face) only re-exports others."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_LIMIT = 300
FOLDER_LIMIT = 15
README_LIMIT = 350
NOT_SOURCE = {"tests", "benchmarks", ".venv", ".git", "build"}


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _source_modules(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py")
                  if not NOT_SOURCE.intersection(path.relative_to(root).parts[:1])
                  and not any(part.startswith(".") or part.endswith(".egg-info") for part in path.relative_to(root).parts))


def _over(paths: list[Path], limit: int) -> dict[str, int]:
    return {str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path): _lines(path)
            for path in paths if _lines(path) > limit}


def test_the_source_tree_is_found():
    modules = {str(path.relative_to(ROOT)) for path in _source_modules(ROOT)}
    assert {"exporter/pipeline.py", "runtimes/registry.py", "core/cli/main.py", "batch/ray_job.py"} <= modules
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in modules)


def test_every_source_module_is_at_most_300_lines():
    assert _over(_source_modules(ROOT), MODULE_LIMIT) == {}


def test_readme_is_at_most_350_lines():
    assert _lines(ROOT / "README.md") <= README_LIMIT


def test_a_long_module_is_reported(tmp_path):
    """The check can fail: a module of 301 lines is named with its length."""
    (tmp_path / "runtimes").mkdir()
    long_module = tmp_path / "runtimes" / "long.py"
    long_module.write_text("pass\n" * (MODULE_LIMIT + 1))
    (tmp_path / "runtimes" / "short.py").write_text("pass\n" * MODULE_LIMIT)
    assert _over(_source_modules(tmp_path), MODULE_LIMIT) == {str(long_module): MODULE_LIMIT + 1}


def _crowded(paths: list[Path], root: Path, limit: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        folder = str(path.parent.relative_to(root))
        counts[folder] = counts.get(folder, 0) + 1
    return {folder: count for folder, count in counts.items() if count > limit}


def test_every_source_folder_holds_at_most_15_modules():
    assert _crowded(_source_modules(ROOT), ROOT, FOLDER_LIMIT) == {}


def test_a_crowded_folder_is_reported(tmp_path):
    """The check can fail: a folder of 16 modules is named with its count; one of 15 beside it is not."""
    for folder, count in (("runtimes", FOLDER_LIMIT + 1), ("exporter", FOLDER_LIMIT)):
        (tmp_path / folder).mkdir()
        for index in range(count):
            (tmp_path / folder / f"m{index}.py").write_text("pass\n")
    assert _crowded(_source_modules(tmp_path), tmp_path, FOLDER_LIMIT) == {"runtimes": FOLDER_LIMIT + 1}


def _only_reexports(path: Path) -> bool:
    """A module whose statements are all imports (a docstring and `__all__` aside) of the package's own names."""
    import ast

    body = ast.parse(path.read_text(encoding="utf-8")).body
    statements = [node for node in body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    own_imports = [node for node in statements
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alexnet_export")]
    rest = [node for node in statements if not isinstance(node, (ast.Import, ast.ImportFrom))
            and not (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"])]
    return bool(own_imports) and not rest


def test_no_module_but_a_package_face_only_reexports():
    assert [str(path.relative_to(ROOT)) for path in _source_modules(ROOT)
            if path.name != "__init__.py" and _only_reexports(path)] == []


def test_a_reexport_only_module_is_found(tmp_path):
    """The check can fail: a module of imports alone is found; one that also defines something is not."""
    (tmp_path / "reexports.py").write_text('"""Names."""\nfrom alexnet_export.errors import InputError\n__all__ = ["InputError"]\n')
    (tmp_path / "works.py").write_text("from alexnet_export.errors import InputError\n\ndef f():\n    raise InputError('x')\n")
    assert _only_reexports(tmp_path / "reexports.py") and not _only_reexports(tmp_path / "works.py")
