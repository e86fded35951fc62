"""Port choice: the one free_port of the project, and the ranges that keep public and internal ports apart."""
from __future__ import absolute_import

import random
import socket

# Ports below 32767 (MMS's Connector rejects port >= Short.MAX_VALUE, "Invalid port number"), in two ranges:
# MMS's loopback ports never come from where public ports (tests, the benchmark, the smoke test) are drawn, so
# a port that clients were just hammering, or that a stopping container still holds, is not handed to MMS a
# moment later (a benchmark run failed so: "Failed to bind to address").
PUBLIC_PORTS = (20000, 26383)
MMS_PORT_LIMIT = 32766  # the highest port MMS accepts
INTERNAL_PORTS = (26384, MMS_PORT_LIMIT)


def port_is_free(port, host="127.0.0.1"):
    sock = socket.socket()
    try:
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def free_port(low=PUBLIC_PORTS[0], high=PUBLIC_PORTS[1]):
    """A free port MMS accepts too (<= MMS_PORT_LIMIT), by default from the public range (tests, bench, smoke test)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(low, high)
        if port_is_free(port):
            return port
    raise RuntimeError("no free port between %d and %d" % (low, high))
