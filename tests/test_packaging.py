"""The install adds one import name and a console script, and CI runs what the README says."""

import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_only_alexnet_export_is_importable_from_the_install(tmp_path):
    # A fresh interpreter outside the source tree, so only site-packages can answer.
    code = ("import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n) is not None"
            " for n in ('models', 'runtimes', 'exporter', 'alexnet_export', 'alexnet_export.runtimes.onnx.runtime')}))")
    found = json.loads(subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                      text=True, check=True).stdout)
    assert found == {"models": False, "runtimes": False, "exporter": False,
                     "alexnet_export": True, "alexnet_export.runtimes.onnx.runtime": True}


def test_distribution_declares_the_console_script_and_ships_the_labels():
    dist = distribution("alexnet-export")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"alexnet-export": "alexnet_export.cli:main"}
    requirements = " ".join(dist.requires or [])
    for needed in ("onnxruntime-gpu", "click", "numpy", "pillow"):
        assert needed in requirements
    assert 'tensorrt>=10; extra == "trt"' in requirements


def test_every_optional_module_is_brought_by_the_extra_its_error_names():
    from alexnet_export.extras import EXTRA_OF

    import re

    requirements = [(re.match(r"[A-Za-z0-9._-]+", r).group(), r) for r in distribution("alexnet-export").requires]
    for distribution_name, extra in EXTRA_OF.values():
        assert any(name == distribution_name and f'extra == "{extra}"' in r for name, r in requirements), extra
        assert not any(name == distribution_name and "extra ==" not in r for name, r in requirements), \
            f"{distribution_name} is in the light install"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line and not line.startswith("#"))
    assert command.strip() in (ROOT / "README.md").read_text()


def test_the_documented_python_calls_import_from_where_they_say():
    import importlib
    import re

    text = (ROOT / "docs" / "cli.md").read_text()
    paragraph = text[text.index("Imports: ") : text.index("Each returns a dataclass")]
    pairs = re.findall(r"`([\w, ]+)` from\s+`(alexnet_export[\w.]*)`", paragraph)
    pairs.append((paragraph[paragraph.index("import ") + 7 : paragraph.index("`;")], "alexnet_export.exporter.pipeline"))
    assert len(pairs) >= 6
    for names, module in pairs:
        for name in re.split(r"[,\s]+", names.strip()):
            assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
