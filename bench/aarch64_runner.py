"""Runs inside the emulated aarch64 interpreter (bench/aarch64.py starts it): one process for all
the files of a check, since the interpreter and ONNX Runtime take seconds to start under emulation
(torch and ExecuTorch, for .pte files on the ExecuTorch layer's interpreter, about 45 s).

    python -m alexnet_export.bench.aarch64_runner JOB.json

JOB.json: {"inputs": "in.npz", "output": "out.npz", "report": "out.json",
           "files": [{"model": path, "input": key in in.npz, "classify": [photo paths], "top_k": k}]}
out.npz holds file i's logits as "logits_i"; out.json the top-k labels of `classify` per file and
what ran them (machine, ONNX Runtime version, provider, precision).
"""

from __future__ import annotations

import json
import platform
import sys

import numpy as np


def main(job_path: str) -> None:
    import onnxruntime

    from alexnet_export.runtimes.registry import open_runtime

    job = json.loads(open(job_path).read())
    inputs = np.load(job["inputs"])
    logits, files = {}, []
    for index, item in enumerate(job["files"]):
        runtime = open_runtime(item["model"])
        logits[f"logits_{index}"] = runtime.predict_in_allowed_batches(inputs[item["input"]])
        classified = runtime.classify(item["classify"], top_k=item["top_k"]) if item["classify"] else []
        files.append({"model": item["model"], "precision": runtime.precision, "device": runtime.device,
                      "labels": list(runtime.metadata.labels),
                      "classified": [[[label, float(p)] for label, p in image] for image in classified]})
    np.savez(job["output"], **logits)
    with open(job["report"], "w") as out:
        json.dump({"machine": platform.machine(), "python": platform.python_version(),
                   "onnxruntime": onnxruntime.__version__, "files": files}, out)


if __name__ == "__main__":
    main(sys.argv[1])
