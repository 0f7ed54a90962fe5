"""The layout holds its sizes as the project grows: every source module at most 300 lines (tests and
benchmarks aside), README.md a front page of at most 350; the details live on docs/ pages."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_LIMIT = 300
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
