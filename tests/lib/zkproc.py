"""Helpers shared by the process-level test scripts (tests/*/*.py), written once.

Import from a script with:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from zkproc import four, ruok, field, wait_until
"""
import socket
import time


def four(port, cmd, host="127.0.0.1", timeout=1.0):
    """Sends a four-letter word and returns the whole answer ("" if nothing answers)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    return out.decode(errors="replace")
                out += b
    except OSError:
        return ""


def ruok(port, host="127.0.0.1"):
    """True when a server on `port` answers `ruok` with `imok`."""
    return four(port, "ruok", host) == "imok"


def field(text, name):
    """The value of `name` in a `srvr`/`stat` ("Name: value") or `mntr` ("name<TAB>value")
    answer, or None."""
    for line in text.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip() if ":" in line else line.split("\t", 1)[1]
    return None


def wait_until(pred, timeout, what, step=0.05):
    """Polls `pred` until it is true; raises AssertionError naming `what` after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
