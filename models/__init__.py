"""The seed AlexNet and the description of its input.

Import the submodules directly: `alexnet` and `weights` need torch, `spec` and `labels` do not,
so this package imports nothing on its own (runtimes read `spec` on machines without torch).
"""
