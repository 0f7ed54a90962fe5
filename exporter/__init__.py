"""Checkpoint -> verified model files, one package per file kind: onnx/ (.onnx in FP32, FP16, INT8, INT4,
and .ort), tensorrt/ (engines), openvino/ (IRs), executorch/ (.pte), litert/ (.tflite). Below them the
steps several kinds share: source.py (where the model comes from), calibration/ (images and ranges),
rewrites/ (LRN in the forms each kind runs), arguments.py (the checks every command runs first).

pipeline.py is the public face: the commands as library calls. Needs the `export` extra (torch, onnx,
onnxscript, onnxconverter-common), and each kind's own library for its files only.
"""
