"""alexnet-export: export the seed AlexNet to ONNX and run it anywhere.

Importing this package is cheap and never imports torch: the runtimes an app embeds
(`alexnet_export.runtimes.OnnxRuntime`) need only numpy, onnxruntime and Pillow.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alexnet-export")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
