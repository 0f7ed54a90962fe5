"""Serving: Triton model repositories, and a local server speaking the same protocol (KServe v2)."""
