"""How `optimize` chooses with the noise in view (optimize/choice.py), on synthetic rows: the tie of
the files whose p50 interval overlaps the fastest's, the rule that breaks it, the Pareto flags,
and the report that shows them. No model is made or timed."""

from __future__ import annotations

import json
import random

from dataclasses import replace

from alexnet_export.optimize.choice import TIE_RULE, choose, tie_of, why_not, with_pareto
from alexnet_export.optimize.report import BatchTiming, Report, Row, to_markdown, to_text, write_report


def _row(id_, p50, interval, megabytes, drop=0.0, *, within=True, gate="passed"):
    fmt = id_.split(":")[0]
    return Row(id_, f"{id_.replace(':', '.')}.file", fmt, "int8", int(megabytes * 1e6), 0.95 - drop / 100, drop, 0,
               p50, gate, within, p50_ci_ms=interval)


def _docs_rows():
    """The three INT8 files docs/optimize.md's report found within 0.07 ms of each other, and two others."""
    return [
        _row("onnx:fp32", 12.85, (12.6, 13.1), 181.5),
        _row("onnx:int8-cpu", 5.06, (5.00, 5.12), 45.5),
        _row("openvino:int8", 3.87, (3.80, 3.96), 45.5),
        _row("executorch:int8", 3.82, (3.75, 3.95), 45.9),
        _row("litert:int8", 3.80, (3.70, 3.90), 45.7),
    ]


def _choose(rows, objective="latency"):
    rows = with_pareto(rows)
    return rows, choose(rows, objective)


def test_files_whose_intervals_overlap_the_fastest_are_a_tie_broken_by_the_fewest_bytes():
    rows, choice = _choose(_docs_rows())
    assert choice.tie == ("litert:int8", "executorch:int8", "openvino:int8")  # the fastest first
    assert choice.row.id == "openvino:int8"  # the fewest bytes of the three, though not the lowest p50
    assert TIE_RULE in choice.decided_by and choice.decided_by.endswith(": openvino:int8")
    assert "3 files' 95% intervals of p50 overlap the fastest's" in choice.decided_by


def test_the_same_tie_set_chooses_the_same_file_in_any_order_and_at_any_p50_inside_it():
    rng = random.Random(0)
    for _ in range(20):
        rows = _docs_rows()
        rng.shuffle(rows)
        jittered = [_row(r.id, round(r.p50_ci_ms[0] + rng.random() * 0.02, 3) if r.id != "onnx:fp32" else r.p50_ms,
                         r.p50_ci_ms, r.bytes / 1e6) for r in rows]
        _, choice = _choose(jittered)
        assert set(choice.tie) == {"litert:int8", "executorch:int8", "openvino:int8"}
        assert choice.row.id == "openvino:int8"


def test_equal_bytes_go_to_the_file_that_needs_fewer_extras_then_to_the_id():
    rows = [_row("openvino:int8", 3.80, (3.7, 3.9), 45.5), _row("ort:fp32", 3.85, (3.75, 3.95), 45.5, drop=-0.25)]
    assert _choose(rows)[1].row.id == "ort:fp32"  # runs on the light install; openvino needs its extra
    rows = [_row("onnx:int8-cpu", 3.80, (3.7, 3.9), 45.5), _row("onnx:fp16", 3.85, (3.75, 3.95), 45.5, drop=-0.25)]
    assert _choose(rows)[1].row.id == "onnx:fp16"  # same bytes, no extras for either: the id


def test_a_file_alone_in_its_interval_is_chosen_as_the_fastest():
    rows, choice = _choose([_row("onnx:int8-cpu", 3.0, (2.9, 3.1), 45.5), _row("onnx:fp32", 12.0, (11.8, 12.3), 181)])
    assert choice.tie == ("onnx:int8-cpu",) and choice.row.id == "onnx:int8-cpu"
    assert "no other file's 95% interval of p50 overlaps its own" in choice.decided_by


def test_only_files_within_the_budget_that_passed_the_gate_tie_or_are_chosen():
    rows = [_row("onnx:int4", 2.0, (1.9, 2.1), 43.0, drop=3.0, within=False),
            _row("onnx:int8-tensorrt", 2.1, (2.0, 2.2), 45.5, gate="min cosine 0.93 < 0.99"),
            _row("onnx:int8-cpu", 3.0, (2.9, 3.1), 45.5), _row("onnx:fp32", 3.05, (2.95, 3.2), 181.5)]
    assert [row.id for row in tie_of(rows)] == ["onnx:int8-cpu", "onnx:fp32"]
    rows, choice = _choose(rows)
    assert choice.row.id == "onnx:int8-cpu"
    nothing = choose([_row("onnx:int4", 2.0, (1.9, 2.1), 43.0, within=False)], "latency")
    assert nothing.row is None and nothing.tie == () and nothing.decided_by.startswith("nothing was chosen")


def test_pareto_flags_mark_the_files_no_other_beats_on_every_figure():
    rows = with_pareto(_docs_rows() + [_row("onnx:int4", 2.0, (1.9, 2.1), 43.0, drop=3.0, within=False),
                                       Row("ort:fp32", "alexnet.ort", "ort", "fp32", 181_500_000, 0.95, 0.0, 0,
                                           None, "not checked", True)])
    flags = {row.id: row.pareto for row in rows}
    assert flags == {"onnx:fp32": False,  # slower than the INT8 files and larger, the same drop
                     "onnx:int8-cpu": False,  # openvino:int8 is as small, as accurate and faster
                     "openvino:int8": True,  # the smallest of the fast ones
                     "executorch:int8": False,  # litert:int8 is faster and smaller
                     "litert:int8": True,  # the fastest within the budget
                     "onnx:int4": True,  # outside the budget, but nothing is faster or smaller
                     "ort:fp32": None}  # not timed: not on the front or off it


def test_identical_figures_do_not_beat_each_other():
    rows = with_pareto([_row("onnx:int8-cpu", 3.0, (2.9, 3.1), 45.5), _row("ort:int8", 3.0, (2.9, 3.1), 45.5)])
    assert [row.pareto for row in rows] == [True, True]


def test_the_tie_break_keeps_to_the_pareto_front():
    """The tie's smallest file is beaten on every figure by a file outside the tie (its interval is
    narrow): the rule picks among the tied files on the front."""
    rows = [_row("litert:int8", 3.80, (3.70, 3.90), 50.0), _row("onnx:int8-cpu", 4.10, (3.85, 4.40), 45.5),
            _row("openvino:int8", 4.00, (3.95, 4.05), 45.5)]
    rows, choice = _choose(rows)
    assert choice.tie == ("litert:int8", "onnx:int8-cpu")
    assert {row.id: row.pareto for row in rows}["onnx:int8-cpu"] is False
    assert choice.row.id == "litert:int8" and "among the tied files on the Pareto front" in choice.decided_by


def test_when_a_file_that_may_not_be_chosen_beats_the_whole_tie_the_rule_takes_all_of_it():
    rows = [_row("onnx:int8-tensorrt", 3.0, (2.9, 3.1), 40.0, gate="min cosine 0.93 < 0.99"),
            _row("litert:int8", 3.80, (3.70, 3.90), 50.0), _row("onnx:int8-cpu", 3.85, (3.75, 3.95), 45.5)]
    rows, choice = _choose(rows)
    assert choice.row.id == "onnx:int8-cpu" and "none is on the Pareto front" in choice.decided_by


def test_the_latency_choice_is_on_the_front_of_random_eligible_sets():
    rng = random.Random(1)
    for _ in range(300):
        rows = []
        for index in range(rng.randint(1, 7)):
            p50 = rng.uniform(3, 6)
            half = rng.uniform(0.01, 0.5)
            rows.append(_row(f"onnx:c{index}", p50, (p50 - half, p50 + rng.uniform(0.01, 0.5)),
                             rng.choice([43.0, 45.5, 90.8, 181.5]), rng.choice([-0.25, 0.0, 0.25])))
        rows, choice = _choose(rows)
        assert choice.row.pareto and choice.row.id in choice.tie


def test_the_size_objective_chooses_the_fewest_bytes_and_still_names_the_tie():
    rows, choice = _choose(_docs_rows(), "size")
    assert choice.row.id == "openvino:int8"  # 45.5 MB, and faster than the INT8 CPU file of the same size
    assert choice.decided_by.startswith("objective size:") and len(choice.tie) == 3


def test_the_report_shows_each_interval_the_tie_and_the_front(tmp_path):
    rows, choice = _choose(_docs_rows())
    report = Report({"max_top1_drop": 0.5, "objective": "latency", "batch_size": 1, "threads": 2},
                    {"cpu": "test CPU", "cores": 2, "cpu_flags": [], "load_average": [0.1, 0.2]}, 0.95, 400, rows, [],
                    str(tmp_path / choice.row.file), {}, choice.tie, choice.decided_by,
                    {"rule": "20 rounds", "rounds": 20, "stopped": "20 rounds asked"})
    markdown = to_markdown(report)
    assert "| p50 ms [95% interval] |" in markdown and "3.87 [3.80, 3.96]" in markdown
    assert "tie (95% intervals overlapping the best's): litert:int8, executorch:int8, openvino:int8" in markdown
    assert f"decided by: {choice.decided_by}" in markdown and "timing: 20 interleaved rounds" in markdown
    assert markdown.count("| yes |") >= 2  # the Pareto column
    written = write_report(tmp_path, report)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["tie"] == list(choice.tie) and data["decided_by"] == choice.decided_by
    assert data["timing"]["rounds"] == 20
    assert all(set(row) >= {"p50_ci_ms", "pareto"} for row in data["candidates"])
    assert all(path.stat().st_size > 0 for path in written)


def _timed(row, *batches):
    """`row` timed at each (batch, p50, p95): images/s and a 3% interval of p50 as bench gives them."""
    timings = tuple(BatchTiming(b, p50, p95, b * 1e3 / p50, (p50 * 0.985, p50 * 1.015)) for b, p50, p95 in batches)
    return replace(row, by_batch=timings, p50_ms=timings[0].p50_ms, p50_ci_ms=timings[0].p50_ci_ms)


def _server_rows():
    """The INT8 CPU file is fastest at batch 1; the IR packs batches better; FP32 is slow everywhere."""
    return [
        _timed(_row("onnx:int8-cpu", 0, None, 45.5), (1, 3.0, 3.3), (8, 20.0, 22.0), (32, 76.0, 90.0)),
        _timed(_row("openvino:int8", 0, None, 45.5), (1, 3.5, 3.8), (8, 16.0, 18.0), (32, 56.0, 70.0)),
        _timed(_row("onnx:fp32", 0, None, 181.5), (1, 10.0, 11.0), (8, 60.0, 64.0), (32, 230.0, 240.0)),
    ]


def test_throughput_takes_the_pair_with_the_most_images_per_second_whose_p95_keeps_the_budget():
    rows = with_pareto(_server_rows(), "throughput", 80.0)
    choice = choose(rows, "throughput", 80.0)
    # openvino:int8 at 32 makes 571 images/s but its p95 (70 ms) keeps 80 ms; onnx:int8-cpu at 32 (90 ms) does not.
    assert (choice.row.id, choice.batch) == ("openvino:int8", 32) and choice.tie == ("openvino:int8@32",)
    tight = choose(with_pareto(_server_rows(), "throughput", 20.0), "throughput", 20.0)
    assert (tight.row.id, tight.batch) == ("openvino:int8", 8)  # 500 images/s, p95 18 ms
    unbounded = choose(with_pareto(_server_rows(), "throughput"), "throughput")
    assert (unbounded.row.id, unbounded.batch) == ("openvino:int8", 32) and "no latency budget" in unbounded.decided_by
    none = choose(rows, "throughput", 3.0)
    assert none.row is None and "p95 within 3 ms" in none.decided_by


def test_throughput_ties_are_broken_by_the_rule_then_the_smaller_batch():
    rows = [_timed(_row("openvino:int8", 0, None, 45.5), (8, 16.0, 18.0), (32, 64.2, 70.0)),
            _timed(_row("litert:int8", 0, None, 48.0), (8, 16.1, 17.0))]
    rows = with_pareto(rows, "throughput", 100.0)
    choice = choose(rows, "throughput", 100.0)
    assert set(choice.tie) == {"openvino:int8@8", "openvino:int8@32", "litert:int8@8"}
    assert (choice.row.id, choice.batch) == ("openvino:int8", 8) and "then the smaller batch" in choice.decided_by


def test_the_throughput_pareto_front_uses_the_best_rate_within_the_latency_budget():
    flags = {row.id: row.pareto for row in with_pareto(_server_rows(), "throughput", 20.0)}
    assert flags == {"onnx:int8-cpu": False, "openvino:int8": True, "onnx:fp32": False}


def test_every_file_not_chosen_has_a_kind_and_a_reason():
    rows = with_pareto(_server_rows() + [_timed(_row("onnx:int4", 0, None, 43.0, drop=3.0, within=False),
                                                (1, 2.0, 2.2), (8, 12.0, 13.0))], "throughput", 10.0)
    choice = choose(rows, "throughput", 10.0)
    assert (choice.row.id, choice.batch) == ("onnx:int8-cpu", 1)
    reasons = why_not(rows, choice, "throughput", 1.0, 10.0)
    assert set(reasons) == {"openvino:int8", "onnx:fp32", "onnx:int4"}
    assert reasons["onnx:int4"] == ("outside the budget", "top-1 +3.00 pp against FP32, 0 answers lost; the budget is 1 pp")
    assert reasons["onnx:fp32"][0] == "over the latency budget" and "batch 8: 64.00" in reasons["onnx:fp32"][1]
    assert reasons["openvino:int8"][0] == "beaten"
    latency = with_pareto(_docs_rows())
    tied = why_not(latency, choose(latency, "latency"), "latency", 1.0)
    assert tied["litert:int8"][0] == "lost the tie-break" and tied["onnx:fp32"][0] == "beaten"


def test_the_throughput_report_shows_each_batch_and_the_chosen_one(tmp_path):
    rows = with_pareto(_server_rows(), "throughput", 80.0)
    choice = choose(rows, "throughput", 80.0)
    not_chosen = [{"id": "litert:int8", "kind": "not made", "reason": "litert is not installed"}]
    report = Report({"max_top1_drop": 1.0, "objective": "throughput", "batch_size": 1, "batches": [1, 8, 32],
                     "max_latency_ms": 80.0, "threads": 2}, {"cpu": "test CPU", "cores": 2}, 0.95, 400, rows,
                    not_chosen, str(tmp_path / choice.row.file), {}, choice.tie, choice.decided_by, {}, choice.batch)
    text = to_text(report)
    assert "batches 1, 8, 32, p95 within 80 ms" in text and "at batch 32" in text
    assert "litert:int8: not made: litert is not installed" in text
    assert "| alexnet.onnx... " not in text and "571.4" in text  # openvino:int8 at 32: 32 / 56 ms
    write_report(tmp_path, report)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["chosen_batch"] == 32 and data["not_chosen"] == not_chosen
    assert [t["batch"] for t in data["candidates"][0]["by_batch"]] == [1, 8, 32]
    assert {"batch", "p50_ms", "p95_ms", "images_per_s"} <= set(data["candidates"][0]["by_batch"][0])
