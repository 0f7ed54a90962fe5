"""optimize's quiet output (core/cli/status_line.py): results and warnings as lines, progress only
as one status line redrawn in place on a terminal and left out of a log."""

from __future__ import annotations

from alexnet_export.cli.status_line import StatusLine
from alexnet_export.events import Advance, Note, Step, Verified


class _Report:
    def table(self) -> str:
        return "  inputs  9"


def _events():
    return [Step("loading weights"), Step("[1/2] making alexnet.onnx (onnx:fp32)", transient=True),
            Advance("top-1 of alexnet.onnx", 5, 10), Verified("parity", _Report()),
            Note("[1/2] onnx:fp32: alexnet.onnx, within the budget"), Note("8 weights were clamped", warning=True)]


def test_in_a_log_only_the_lines_that_stay_are_written(capsys):
    status = StatusLine()
    status.interactive = False
    for event in _events():
        status(event)
    status.detail(Step("verifying alexnet.onnx.partial against eager PyTorch"))
    status.detail(Note("calibration ranges reused"))
    status.detail(Note("clamped", warning=True))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["loading weights", "[1/2] onnx:fp32: alexnet.onnx, within the budget",
                     "warning: 8 weights were clamped", "warning: clamped"]


def test_on_a_terminal_progress_is_redrawn_in_place_and_cleared_before_a_line(capsys):
    status = StatusLine()
    status.interactive = True
    for event in _events():
        status(event)
    err = capsys.readouterr().err
    making, counting = "[1/2] making alexnet.onnx (onnx:fp32)", "top-1 of alexnet.onnx: 5/10"
    assert err.startswith(f"loading weights\n\r{making}\r{counting.ljust(len(making))}")
    assert f"\r{' ' * len(making)}\r[1/2] onnx:fp32: alexnet.onnx, within the budget\n" in err  # cleared, then the line
    assert "inputs  9" not in err  # parity tables go to report.md
