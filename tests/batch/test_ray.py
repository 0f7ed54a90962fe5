"""`classify --ray` and `classify_on_ray` on a real two-node Ray cluster of this machine.

Ray connects its processes over the machine's own interface address even when told 127.0.0.1, so
the cluster runs in network and PID namespaces of its own (`unshare -n -p -f --mount-proc`), where
it uses loopback only and where `ray stop` sees no other Ray. One scenario (ray_cluster_scenario.py)
pays the cluster's start-up once: the CLI job, a job resuming a local run's output, a job whose
actor is killed with SIGKILL, and the Ray Data example of docs/batch.md; the tests read its outputs.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_export.batch import classify_collection
from alexnet_export.batch.output import PartWriter, read_existing
from alexnet_export.hashing import file_sha256

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


def namespaces_refused() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    try:
        probe = subprocess.run([*NAMESPACE, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return None if probe.returncode == 0 else f"network/PID namespaces not permitted here: {probe.stderr.strip()}"


def read_rows(output: Path) -> dict[str, dict]:
    import pyarrow.parquet as pq

    from alexnet_export.batch.schema import arrow_schema

    table = pq.read_table(output)
    assert table.schema == arrow_schema()
    rows = table.to_pylist()
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)), "a path written twice"
    return {row["path"]: row for row in rows}


def assert_same_rows(rows: dict[str, dict], expected: dict[str, dict]) -> None:
    assert sorted(rows) == sorted(expected)  # every path, exactly once (read_rows checks the once)
    for path, row in rows.items():
        want = expected[path]
        assert (row["labels"], row["error"] is None, row["model_sha256"], row["precision"]) == \
            (want["labels"], want["error"] is None, want["model_sha256"], want["precision"]), path
        if want["error"] is None:
            np.testing.assert_allclose(row["probabilities"], want["probabilities"], rtol=0, atol=1e-6)


def readme_ray_example() -> str:
    text = (ROOT / "docs" / "batch.md").read_text()
    section = text[text.index("The predictor behind") :]
    return next(block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "import ray" in block)


@pytest.fixture(scope="module")
def ray_images(tmp_path_factory, collection, real_images) -> tuple[list[str], Path]:
    """The collection (4 photos, generated PNG/JPEG, 4 broken files, a folder named dir.jpg/) and 240
    JPEG crops of the test photos: 257 images, as a manifest."""
    folder = tmp_path_factory.mktemp("ray-images")
    for index in range(240):
        crop = real_images[index % len(real_images)]
        Image.fromarray(crop).resize((160 + index % 7 * 16, 120 + index % 5 * 16)).save(folder / f"{index:03d}.jpg")
    manifest = folder / "manifest.txt"
    manifest.write_text("\n".join([*map(str, collection.all), *map(str, sorted(folder.glob("*.jpg")))]) + "\n")
    return [str(collection.root), str(folder)], manifest


@pytest.fixture(scope="module")
def local_rows(small_onnx, ray_images, tmp_path_factory) -> dict[str, dict]:
    output = tmp_path_factory.mktemp("local") / "local.parquet"
    classify_collection(small_onnx, ray_images[1], output, batch_size=8)
    return read_rows(output)


@pytest.fixture(scope="module")
def scenario(small_onnx, ray_images, local_rows, console, tmp_path_factory) -> dict:
    pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    refused = namespaces_refused()
    if refused:
        pytest.skip(refused)
    out = tmp_path_factory.mktemp("ray-scenario")
    inputs, manifest = ray_images
    resumed = out / "resumed.parquet"  # a local run did the first 100 images; Ray must do the rest
    head = out / "head.txt"
    head.write_text("\n".join(manifest.read_text().splitlines()[:100]) + "\n")
    classify_collection(small_onnx, head, resumed, batch_size=8, rows_per_part=50)
    readme = out / "readme"
    (readme / "photos").mkdir(parents=True)
    for image in sorted(Path(inputs[1]).glob("*.jpg"))[:40]:
        shutil.copyfile(image, readme / "photos" / image.name)
    (readme / "alexnet.onnx").symlink_to(small_onnx)
    config = {"out": str(out), "model": str(small_onnx), "inputs": inputs, "manifest": str(manifest),
              "console": console, "resumed": str(resumed), "readme_dir": str(readme),
              "readme_code": readme_ray_example()}
    (out / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    run = subprocess.run([*NAMESPACE, sys.executable, str(HERE / "ray_cluster_scenario.py"), str(out / "config.json")],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "scenario.json").read_text())
    assert report["head"]["rc"] == 0 and report["node"]["rc"] == 0, report["head"]["stderr"] + report["node"]["stderr"]
    report.update(out=out, seconds=time.perf_counter() - started, resumed_output=resumed)
    return report


def test_cli_job_on_two_nodes_gives_the_local_rows(scenario, local_rows, collection):
    cli = scenario["cli"]
    assert cli["rc"] == 0, cli["stderr"][-2000:]
    assert "Traceback" not in cli["stderr"]
    rows = read_rows(scenario["out"] / "cli.parquet")
    assert_same_rows(rows, local_rows)
    failed = {path for path, row in rows.items() if row["error"] is not None}
    assert failed == set(map(str, collection.bad))  # the corrupt ones; dir.jpg/ was searched, its image read
    assert str(collection.folder_named_like_an_image / "inside.png") in rows
    summary = cli["stdout"].strip().splitlines()[-1]
    assert f": {len(rows) - len(failed)} classified, {len(failed)} errors, 0 skipped" in summary
    assert "Ray: the cluster at 127.0.0.1:6379, joined in" in cli["stderr"] and "2 nodes, 2 CPUs" in cli["stderr"]
    names = sorted(p.name for p in (scenario["out"] / "cli.parquet").iterdir())
    assert names == [f"part-{i:05d}.parquet" for i in range(len(names))]  # the local naming; no staging left


def test_a_ray_run_finishes_a_local_runs_output(scenario, local_rows):
    resumed = scenario["resumed"]
    assert resumed["rc"] == 0, resumed["stderr"][-2000:]
    assert f"{len(local_rows) - 100} classified, 0 errors, 100 skipped" in resumed["stdout"]
    assert_same_rows(read_rows(scenario["resumed_output"]), local_rows)


def test_a_killed_worker_loses_and_duplicates_no_row(scenario, local_rows, small_onnx):
    killed = scenario["killed"]
    assert killed["rc"] == 0, killed["stderr"][-3000:]
    assert killed["killed"] is not None, f"no actor was killed (actors seen: {killed['actors']})"
    assert len(killed["actors"]) >= 3, "the killed actor was not replaced"  # two, then the restarted one
    rows = read_rows(scenario["out"] / "killed.parquet")
    assert_same_rows(rows, local_rows)  # every path once, the same results, with the model shipped as bytes
    assert {row["model_sha256"] for row in rows.values()} == {file_sha256(small_onnx)}
    summary = json.loads(killed["stdout"].strip().splitlines()[-1])
    assert summary["classified"] + summary["errors"] == len(local_rows)


def test_a_model_that_fails_in_the_workers_is_its_own_one_line_error(scenario):
    """top_k above the model's classes is found where the model opens: in each actor, not the driver."""
    failed = scenario["model_fails"]
    assert failed["rc"] == 2, failed["stderr"][-2000:]
    assert failed["stderr"].strip().splitlines()[-1] == "Error: top_k is 11; small.onnx has 10 classes"
    assert not (scenario["out"] / "failed.parquet").exists()


def test_the_readme_ray_data_example_runs(scenario, local_rows, ray_images):
    readme = scenario["readme"]
    assert readme["rc"] == 0, readme["stderr"][-3000:]
    rows = read_rows(scenario["out"] / "readme" / "results.parquet")  # one table: the files share the schema
    assert len(rows) == 40
    by_name = {Path(path).name: row for path, row in local_rows.items() if Path(path).parent == Path(ray_images[0][1])}
    assert_same_rows(rows, {path: by_name[Path(path).name] for path in rows})  # the same images, copied


def test_the_scenario_time(scenario):
    """Not a speed check: records the cluster scenario's time in the test report (-rA shows it)."""
    print(f"Ray scenario: {scenario['seconds']:.1f} s in all; head {scenario['head']['seconds']:.1f} s, node "
          f"{scenario['node']['seconds']:.1f} s, stop {scenario['stop']['seconds']:.1f} s")
    assert scenario["stop"]["rc"] == 0, scenario["stop"]["stderr"]


# -- without a cluster -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_where_no_cluster_answers_is_one_line_within_seconds(cli, one_line_error, small_onnx,
                                                                        collection, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = cli("classify", small_onnx, collection.root, "-o", tmp_path / "r.parquet", "--ray", address)
    assert time.monotonic() - started < 15  # the interpreter and Ray's import included
    one_line_error(result, rf"no Ray cluster answers at {address} \(Connection refused")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arguments, pattern", [
    (["{out}/missing.onnx", "{images}", "-o", "{out}/r.parquet", "--ray"], r"model .*missing.onnx does not exist"),
    (["{model}", "{images}", "-o", "{out}/r.parquet", "--ray", "{images}"], r"no Ray address; .* \(--ray\)$"),
    (["{model}", "{images}", "-o", "{out}/r.jsonl", "--ray"], r"a Ray job writes Parquet.* \(--output\)$"),
    (["{model}", "{images}", "-o", "{out}/r.parquet", "--workers", "2"], r"--workers apply to a Ray job; add --ray"),
    (["{model}", "{images}", "-o", "{out}/r.parquet", "--ray", "ray://head:10001"], r"Ray Client is not supported"),
])
def test_bad_ray_arguments_are_one_line_before_any_work(cli, one_line_error, small_onnx, collection, tmp_path,
                                                        arguments, pattern):
    out = tmp_path / "out"
    out.mkdir()
    values = dict(model=small_onnx, out=out, images=collection.root)
    result = cli("classify", *(argument.format(**values) for argument in arguments))
    one_line_error(result, pattern, code=2)
    assert list(out.iterdir()) == []


WITHOUT_RAY = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ray":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
from alexnet_export.cli.main import main
main(["classify", *sys.argv[1:]])
"""


def test_without_ray_the_error_names_the_extra(small_onnx, collection, tmp_path):
    output = tmp_path / "r.parquet"
    run = subprocess.run([sys.executable, "-c", WITHOUT_RAY, str(small_onnx), str(collection.root), "-o", str(output),
                          "--ray"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == ("Error: classify on Ray needs ray, which is not installed here: "
                                                   "pip install 'alexnet-export[ray]'")
    assert not output.exists()


# -- adopting what Ray's writer leaves (no Ray needed) ------------------------------------------------


def test_a_killed_ray_runs_staging_folder_keeps_whole_files_only(small_onnx, collection, tmp_path):
    """What a killed Ray run leaves in its staging folder: a whole file is adopted as the next part by
    the next run (local here), its rows not classified again; a cut-off file is deleted unread."""
    import pyarrow.parquet as pq

    from alexnet_export.batch import ArrowClassifier

    output = tmp_path / "results.parquet"
    first = classify_collection(small_onnx, collection.good[:3], output)
    staging = output / ".staging-0123abcd"
    staging.mkdir()
    table = ArrowClassifier(small_onnx)({"path": [str(p) for p in collection.good[2:6]]})  # one path is done
    pq.write_table(table, staging / "0355ab_000000-0.parquet")
    whole = (staging / "0355ab_000000-0.parquet").read_bytes()
    (staging / "0355ab_000001-0.parquet").write_bytes(whole[: len(whole) // 2])  # cut off by the kill
    events = []
    result = classify_collection(small_onnx, collection.good, output, on_event=events.append)
    assert not staging.exists()
    assert sorted(p.name for p in output.iterdir()) == ["part-00000.parquet", "part-00001.parquet",
                                                        "part-00002.parquet"]
    assert pq.read_table(output / "part-00001.parquet").column("path").to_pylist() == \
        [str(p) for p in collection.good[3:6]]  # the adopted file, less the row already written
    rows = read_rows(output)
    assert sorted(rows) == sorted(map(str, collection.good))
    assert first.classified == 3 and result.skipped == 3
    assert result.classified == len(collection.good) - 3  # the adopted rows count as this run's (computed again,
    # then dropped as written)


def test_a_part_writer_adopts_only_files_of_the_output_schema(small_onnx, collection, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    output = tmp_path / "results.parquet"
    writer = PartWriter(read_existing(output), 10)
    writer.take()
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"path": ["a"], "score": [1.0]}), other)
    assert writer.adopt(other) is None and other.exists()
    writer.close()
    assert list(output.iterdir()) == []
