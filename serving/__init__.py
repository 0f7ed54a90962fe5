"""Serving: Triton model repositories (and, later, a local server speaking the same protocol)."""
