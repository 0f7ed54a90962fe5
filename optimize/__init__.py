"""`alexnet-export optimize`: the fastest file within a top-1 budget, measured on labelled images.

A layer above `exporter` and `bench` (it makes files with one and measures them with the other),
below the CLI: optimize/run.py is the library call, candidates.py the files it can make,
measure.py top-1 and timing, choice.py the Pareto front, the tie and the rule that breaks it,
progress.py resuming, report.py the report.
"""

from alexnet_export.optimize.run import OBJECTIVES, OptimizeResult, optimize

__all__ = ["OBJECTIVES", "OptimizeResult", "optimize"]
