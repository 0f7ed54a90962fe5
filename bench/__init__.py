"""`alexnet-export bench` and `verify`: one harness that times every runtime through the same
interface (harness.py), and accuracy and agreement on labelled images (accuracy.py)."""
