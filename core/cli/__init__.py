"""The `alexnet-export` command line: a thin client of the library. main.py: the group, errors as one line
and exit codes; options.py: option groups and output helpers the commands share; one module per command
group (export.py, verify.py, bench.py, ...)."""

from alexnet_export.cli.main import main

__all__ = ["main"]
