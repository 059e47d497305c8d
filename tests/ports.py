"""Free TCP ports for the servers the tests start.

The usual bind-to-0 trick hands out a port from the kernel's ephemeral range, and any outgoing
connection on the machine (an HTTP client, a Temporal poller) may take that port as its local end
before the server meant to listen there binds it. Ports here come from below the ephemeral range,
which outgoing connections never use, in a slice of its own for each pytest-xdist worker, and are
checked free before they are handed out.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import threading

_FLOOR = 15000
_SLICES = 8


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _slice() -> range:
    top = max(_ephemeral_low(), _FLOOR + _SLICES * 200)
    size = (top - _FLOOR) // _SLICES
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    index = int(match.group(1)) % (_SLICES - 1) + 1 if match else 0  # slice 0: no xdist
    return range(_FLOOR + index * size, _FLOOR + (index + 1) * size)


_PORTS = _slice()
_lock = threading.Lock()
_next = itertools.cycle(range(random.randrange(len(_PORTS)), random.randrange(len(_PORTS)) + len(_PORTS)))


def _is_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, outside the ephemeral range, not handed out before by this
    process (until the slice wraps round)."""
    with _lock:
        for _ in range(len(_PORTS)):
            port = _PORTS.start + next(_next) % len(_PORTS)
            if _is_free(port, host):
                return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}")
