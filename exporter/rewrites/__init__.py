"""The seed's LocalResponseNorm in the forms each file kind runs: lrn.py (one native ONNX `LRN` node),
lrn_pooled.py (plain ONNX operators, for ONNX Runtime's CPU kernels in precision files), lrn_banded.py
(a banded 1x1 convolution, for ExecuTorch's XNNPACK delegate and LiteRT's builtin operators)."""
