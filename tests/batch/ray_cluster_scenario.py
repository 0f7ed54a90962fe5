"""Runs as PID 1 of network and PID namespaces of its own (`unshare --net --pid --fork
--mount-proc`), where Ray uses 127.0.0.1 and nothing else: starts a two-node Ray cluster (a head
and a second node, one CPU each), runs the jobs tests/batch/test_ray.py asserts on, and ends the
cluster by killing its processes by pid: every other process of this PID namespace is the
cluster's (`ray stop` would look for Ray processes machine-wide outside such a namespace, and
takes 1 to 25 s inside). Not a test module: test_ray.py runs it and reads OUT/scenario.json.

Ray starts its processes with this interpreter, so the workers import the same alexnet_export.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADDRESS = "127.0.0.1:6379"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]

# A driver that classifies with the model shipped through the object store (every node could read
# it here; ship_model=True sends it anyway), while the watcher below kills one of its actors.
KILLED_JOB = """
import json, sys
from alexnet_export.batch import classify_on_ray
model, manifest, output = sys.argv[1:]
result = classify_on_ray(model, manifest, output, address="%s", workers=2, batch_size=8, rows_per_part=24,
                         ship_model=True)
print(json.dumps({"classified": result.classified, "errors": result.errors, "parts": result.parts}))
""" % ADDRESS


def run(command, timeout=300, **options) -> dict:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
            "seconds": time.perf_counter() - started}


def actor_pids() -> set[int]:
    """The pids of this namespace's classify actors (their process title names the class). Only this
    network namespace's processes: other Ray clusters on the machine are none of this test's business."""
    own = os.readlink("/proc/self/ns/net")
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") != own:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                title = handle.read()
        except OSError:  # gone meanwhile
            continue
        if b"_ClassifyWorker" in title and b"ray::" in title:
            found.add(int(entry))
    return found


def killed_job(config: dict, out: Path) -> dict:
    """The job above, with one of its two actors killed (SIGKILL) 3 s after both are up, while they work."""
    output = out / "killed.parquet"
    started = time.perf_counter()
    driver = subprocess.Popen([sys.executable, "-c", KILLED_JOB, config["model"], config["manifest"], str(output)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[int] = []
    both_up, killed, rows_before_kill = None, None, None
    deadline = time.monotonic() + 240
    while driver.poll() is None and time.monotonic() < deadline:
        for pid in sorted(actor_pids()):
            if pid not in seen:
                seen.append(pid)
        if both_up is None and len(seen) >= 2:
            both_up = time.monotonic()
        if killed is None and both_up is not None and time.monotonic() - both_up > 3:
            killed = seen[0]
            rows_before_kill = len(list(output.glob("part-*.parquet"))) if output.is_dir() else 0
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    if driver.poll() is None:
        driver.kill()
    stdout, stderr = driver.communicate()
    return {"rc": driver.returncode, "stdout": stdout, "stderr": stderr, "actors": seen, "killed": killed,
            "parts_before_kill": rows_before_kill, "seconds": time.perf_counter() - started}


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    out = Path(config["out"])
    # Token authentication off: nothing outside this network namespace can reach the cluster, and Ray
    # 2.60 turns it on for `ray start --head` when ~/.ray/auth_token exists (a local `ray.init()` writes
    # one), but a second node's `ray start --address` does not read it (measured: InvalidAuthToken).
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    report: dict = {}
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    temp = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--temp-dir", temp, "--disable-usage-stats"]
    try:
        report["head"] = run([*RAY, "start", "--head", "--port", ADDRESS.split(":")[1], "--include-dashboard=false",
                              *common], env=env)
        report["node"] = run([*RAY, "start", "--address", ADDRESS, *common], env=env)
        if report["head"]["rc"] or report["node"]["rc"]:
            return
        console = config["console"]
        report["cli"] = run([console, "classify", config["model"], *config["inputs"], "-o", str(out / "cli.parquet"),
                             "--ray", ADDRESS, "--workers", "2", "--batch-size", "8", "--rows-per-part", "40"], env=env)
        report["resumed"] = run([console, "classify", config["model"], *config["inputs"], "-o",
                                 config["resumed"], "--ray", ADDRESS, "--workers", "2"], env=env)
        report["model_fails"] = run([console, "classify", config["model"], config["inputs"][0], "-o",
                                     str(out / "failed.parquet"), "--ray", ADDRESS, "--top-k", "11"], env=env)
        report["killed"] = killed_job(config, out)
        report["readme"] = run([sys.executable, "-c", config["readme_code"]], cwd=config["readme_dir"],
                               env={**env, "RAY_ADDRESS": ADDRESS})
    finally:
        report["stop"] = end_cluster()
        shutil.rmtree(temp, ignore_errors=True)
        (out / "scenario.json").write_text(json.dumps(report, indent=1))


def end_cluster() -> dict:
    """SIGKILL every process of this PID namespace but this one (/proc is the namespace's own)."""
    started = time.perf_counter()
    assert os.getpid() == 1, "run me as PID 1 of a PID namespace of my own (unshare --pid --fork --mount-proc)"
    killed = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != 1:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return {"rc": 0, "killed": killed, "stdout": "", "stderr": "", "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    main()
