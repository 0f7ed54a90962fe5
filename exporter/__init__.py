"""torch -> ONNX, parity checks against eager PyTorch. Needs torch, onnx and onnxscript."""
