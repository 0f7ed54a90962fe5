"""Byte-mutated ncnn pairs, each opened with NcnnRuntime and run on zeros in a child process: a hostile pair is
refused in one clean error or runs; it never crashes the process (ncnn itself trusts what it reads, so the
reader and the runtime's checks are what stand between a damaged file and a segfault).

Each case comes with a sidecar that matches the mutated files (sizes and digests), as a hostile sender would
write it, so the mutation reaches the reader and ncnn instead of stopping at the sidecar. One child runs a batch
of cases; the .bin is mutated in place in a copy and put back after each case (no 45 MB copy per case).

CI runs 40 cases; more, with every outcome written out, with
    ALEXNET_NCNN_FUZZ_CASES=1000 ALEXNET_FUZZ_REPORT=fuzz.json .venv/bin/python -m pytest tests/ncnn/test_hostile.py -s
"""

import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from alexnet_export.hashing import file_sha256

FUZZ_SEED = 7767517
BATCH = 50  # cases per child process
TEXT_BYTES = b"0123456789 =,.-e\nLRNx"  # the .param's own alphabet: these get past the text check more often

CHILD = r"""
import json, os, sys
import numpy as np
from alexnet_export.errors import InferenceError, ModelLoadError
from alexnet_export.hashing import file_sha256
from alexnet_export.runtimes.ncnn.runtime import NcnnRuntime

job = json.load(open(sys.argv[1]))
folder, zeros = job["folder"], np.zeros((1, 3, 224, 224), np.float32)
param, bin_file = folder + "/case.ncnn.param", folder + "/case.ncnn.bin"
for case in job["cases"]:
    print(json.dumps({"case": case["id"], "what": case["what"], "start": True}), flush=True)
    source, old, tail, changed = job["bins"][case["bin"]], [], b"", case["edits"] or case["cut"] is not None
    if changed:
        with open(source, "r+b") as file:  # the case's bytes in place, the old ones kept to put back
            for offset, value in case["edits"]:
                file.seek(offset)
                old.append((offset, file.read(1)))
                file.seek(offset)
                file.write(bytes([value]))
            if case["cut"] is not None:
                file.seek(case["cut"])
                tail = file.read()
                file.truncate(case["cut"])
    with open(param, "wb") as file:
        file.write(case["param"].encode("latin-1"))
    if os.path.lexists(bin_file):
        os.remove(bin_file)
    os.link(source, bin_file)  # NAME.ncnn.bin beside NAME.ncnn.param
    own = {"param_bytes": os.path.getsize(param), "param_sha256": file_sha256(param), "bin_bytes": os.path.getsize(source),
           "bin_sha256": file_sha256(source) if changed else job["digests"][case["bin"]]}
    with open(param + ".json", "w") as file:
        json.dump({**job["sidecar"], **own}, file)
    try:
        runtime = NcnnRuntime(param, threads=1)
        logits = runtime.predict(zeros)
        runtime.close()
        outcome = "ran" if logits.shape == (1, runtime.metadata.num_classes) else f"unexpected: logits {logits.shape}"
    except (ModelLoadError, InferenceError) as exc:
        outcome = "refused: " + str(exc)
    except Exception as exc:
        outcome = f"unexpected: {type(exc).__name__}: {str(exc)[:300]}"
    if changed:
        with open(source, "r+b") as file:
            if case["cut"] is not None:
                file.seek(case["cut"])
                file.write(tail)
            for offset, value in reversed(old):
                file.seek(offset)
                file.write(value)
    print(json.dumps({"case": case["id"], "what": case["what"], "outcome": outcome}), flush=True)
"""


def _offsets(param) -> tuple[list[int], list[tuple[int, int]]]:
    """Where each weight blob's 4-byte tag lies in the .bin, and each INT8 scale blob (offset, bytes), walked as
    the reader walks the .bin."""
    from alexnet_export.runtimes.ncnn.reader import TAGS, _bin_plan, bin_path, read_ncnn_facts

    tags, scales, offset = [], [], 0
    with bin_path(param).open("rb") as data:
        for layer in read_ncnn_facts(param).layers:
            for kind, count in _bin_plan(layer):
                if kind == "weights":
                    tags.append(offset)
                    data.seek(offset)
                    offset += 4 + -(-count * TAGS[int.from_bytes(data.read(4), "little")][1] // 4) * 4
                    continue
                if "scale" in kind:
                    scales.append((offset, 4 * count))
                offset += 4 * count
    return tags, scales


def _changed(old: int, rng: np.random.Generator) -> int:
    return int(rng.integers(256)) if rng.random() < 0.5 else old ^ (1 << int(rng.integers(8)))


def mutate_param(text: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """A few bytes of the .param changed, deleted or inserted anywhere (mostly from its own alphabet), or a cut."""
    if rng.random() < 0.1:
        cut = int(rng.integers(len(text)))
        return text[:cut], f"param cut at {cut}"
    data, done = bytearray(text), []
    for _ in range(int(rng.integers(1, 4))):
        at, how = int(rng.integers(len(data))), rng.random()
        byte = TEXT_BYTES[int(rng.integers(len(TEXT_BYTES)))] if rng.random() < 0.7 else _changed(data[at], rng)
        if how < 0.6:
            data[at] = byte
        elif how < 0.8:
            del data[at]
        else:
            data.insert(at, byte)
        done.append(f"{'set' if how < 0.6 else 'del' if how < 0.8 else 'ins'}@{at}")
    return bytes(data), "param " + " ".join(done)


def mutate_bin(data, size: int, tags: list[int], scales: list[tuple[int, int]],
               rng: np.random.Generator) -> tuple[list, int | None, str]:
    """(edits [(offset, new byte)], cut or None, what), one region a case: bytes changed in the first 64 KB
    (conv1's weights, bias and scales), on one weight tag, at the start of one layer's weights or in its INT8
    scales; or a cut anywhere."""
    region = rng.random()
    if region < 0.15:
        cut = int(rng.integers(size))
        return [], cut, f"bin cut at {cut}"
    if region < 0.45:
        where, offsets = "head", rng.integers(1 << 16, size=int(rng.integers(1, 9)))
    elif region < 0.65:
        where, offsets = "tag", [tags[int(rng.integers(len(tags)))] + int(rng.integers(4))]
    elif region < 0.85:
        where, offsets = "weights", tags[int(rng.integers(len(tags)))] + 4 + rng.integers(64, size=int(rng.integers(1, 5)))
    else:
        start, length = scales[int(rng.integers(len(scales)))]
        where, offsets = "scales", start + rng.integers(length, size=int(rng.integers(1, 3)))
    edits = {int(offset): _changed(data[int(offset)], rng) for offset in offsets}
    return sorted(edits.items()), None, f"bin {where} bytes at " + ",".join(map(str, sorted(edits)))


def _cases(int8_ncnn, fp32_ncnn, count: int) -> list[dict]:
    """Seeded cases: half on the INT8 .bin, a third on the INT8 .param, the rest on the FP32 .param."""
    rng = np.random.default_rng(FUZZ_SEED)
    texts = {"int8": int8_ncnn.path.read_bytes(), "fp32": fp32_ncnn.path.read_bytes()}
    data, (tags, scales) = int8_ncnn.bin.read_bytes(), _offsets(int8_ncnn.path)
    cases = []
    for index in range(count):
        pick = rng.random()
        kind = "int8" if pick < 5 / 6 else "fp32"
        case = {"id": index, "bin": kind, "edits": [], "cut": None, "param": texts[kind]}
        if pick < 0.5:
            case["edits"], case["cut"], what = mutate_bin(data, int8_ncnn.bin_bytes, tags, scales, rng)
        else:
            case["param"], what = mutate_param(texts[kind], rng)
        cases.append({**case, "param": case["param"].decode("latin-1"), "what": f"{kind} {what}"})
    return cases


def _run_batch(job: dict, folder) -> list[dict]:
    """The cases in one child; a crash or hang fails the test, naming the case the child was on."""
    (folder / "job.json").write_text(json.dumps(job))
    try:
        result = subprocess.run([sys.executable, "-c", CHILD, str(folder / "job.json")], check=False,
                                capture_output=True, text=True, timeout=60 + 5 * len(job["cases"]))
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        lines = (out.decode() if isinstance(out, bytes) else out).strip().splitlines()
        pytest.fail(f"the child hung; last line: {lines[-1] if lines else 'none'}")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, (f"the child exited {result.returncode} (negative: killed by that signal);"
                                    f" last line: {lines[-1] if lines else 'none'}; stderr: {result.stderr[-2000:]}")
    return [json.loads(line) for line in lines if "outcome" in json.loads(line)]


def test_mutated_pairs_are_refused_or_run_never_crash(int8_ncnn, fp32_ncnn, tmp_path):
    count = int(os.environ.get("ALEXNET_NCNN_FUZZ_CASES", "40"))
    bins = {"int8": tmp_path / "int8.ncnn.bin", "fp32": fp32_ncnn.bin}
    shutil.copy(int8_ncnn.bin, bins["int8"])  # mutated in place, put back after each case; FP32's is only read
    sidecars = {kind: json.loads(made.sidecar.read_text()) for kind, made in (("int8", int8_ncnn), ("fp32", fp32_ncnn))}
    cases, outcomes = _cases(int8_ncnn, fp32_ncnn, count), []
    digests = {kind: file_sha256(path) for kind, path in bins.items()}
    for kind in ("int8", "fp32"):
        mine = [case for case in cases if case["bin"] == kind]
        for start in range(0, len(mine), BATCH):
            job = {"folder": str(tmp_path), "sidecar": sidecars[kind], "bins": {k: str(p) for k, p in bins.items()},
                   "digests": digests, "cases": mine[start:start + BATCH]}
            outcomes += _run_batch(job, tmp_path)
    assert file_sha256(bins["int8"]) == digests["int8"]  # every case put back
    counts = Counter("ran" if o["outcome"] == "ran" else o["outcome"].split(":")[0] for o in outcomes)
    print(json.dumps({"cases": count, "seed": FUZZ_SEED, "outcomes": dict(counts)}))
    if os.environ.get("ALEXNET_FUZZ_REPORT"):
        with open(os.environ["ALEXNET_FUZZ_REPORT"], "w") as handle:
            json.dump({"cases": count, "seed": FUZZ_SEED, "outcomes": dict(counts), "each": outcomes}, handle, indent=2)
    assert len(outcomes) == count
    unexpected = [o for o in outcomes if not (o["outcome"] == "ran" or o["outcome"].startswith("refused: "))]
    assert unexpected == []
    assert all("\n" not in o["outcome"] for o in outcomes)  # one line each
    assert counts["ran"] and counts["refused"]  # both happen, so neither branch is vacuous
