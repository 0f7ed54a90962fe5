"""Checkpoint -> verified ONNX (FP32, FP16, INT8) -> TensorRT engine.

pipeline.py holds the commands as library calls; the other modules are their steps. Needs
torch, onnx and onnxscript (export), onnxruntime (verification, calibration, quantization),
onnxconverter-common (FP16), and TensorRT with cuda-python for engines only.
"""
