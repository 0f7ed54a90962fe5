"""`alexnet-export bench`: one harness that times every runtime through the same interface."""
