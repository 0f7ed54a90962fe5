"""core/quiet.py's stderr capture: Python's and native code's writes kept, nothing printed, stderr restored."""

import ctypes
import os
import sys
import threading

from alexnet_export.quiet import captured_stderr


def test_python_and_file_descriptor_writes_are_kept_and_stderr_comes_back(capfd):
    libc = ctypes.CDLL(None)
    with captured_stderr() as log:
        print("from python", file=sys.stderr)
        os.write(2, b"from fd 2\n")
        libc.fputs(b"from C stdio\n", ctypes.c_void_p.in_dll(libc, "stderr"))
    assert log.getvalue().splitlines() == ["from python", "from fd 2", "from C stdio"]
    print("after", file=sys.stderr)
    os.write(2, b"after fd\n")
    assert capfd.readouterr().err == "after\nafter fd\n"


def test_two_threads_capturing_at_once_each_get_their_own_and_restore_stderr(capfd):
    logs = {}

    def capture(name):
        with captured_stderr() as log:
            for _ in range(50):
                os.write(2, f"{name}\n".encode())
        logs[name] = log.getvalue()

    workers = [threading.Thread(target=capture, args=(name,)) for name in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert {name: set(text.split()) for name, text in logs.items()} == {name: {name} for name in "abc"}
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"
