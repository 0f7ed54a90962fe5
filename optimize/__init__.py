"""`alexnet-export optimize`: the fastest file within a top-1 budget, measured on labelled images.

A layer above `exporter` and `bench` (it makes files with one and measures them with the other),
below the CLI: optimize/run.py is the library call, checks.py what it checks before any work,
candidates.py the files it can make, making.py one made and measured (or why not), measure.py
top-1 and timing, choice.py the Pareto front, the tie, the rule that breaks it and why the others
lost, progress.py resuming, report.py the report (plot.py its figure).
"""

from alexnet_export.optimize.checks import OBJECTIVES
from alexnet_export.optimize.run import OptimizeResult, optimize

__all__ = ["OBJECTIVES", "OptimizeResult", "optimize"]
