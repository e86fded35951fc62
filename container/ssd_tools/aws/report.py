"""Step lines, results and failures, printed like docker/lib.sh does (steps and errors on stderr)."""
from __future__ import absolute_import, print_function

import sys
import time

_T0 = time.time()


class DeployError(Exception):
    """A failure the user can act on: what went wrong, and what to do about it."""

    def __init__(self, what, todo=None):
        Exception.__init__(self, what)
        self.what = what
        self.todo = todo


def step(message):
    """`==> [HH:MM:SS +Ns] message` on stderr."""
    print("==> [%s +%ds] %s" % (time.strftime("%H:%M:%S"), int(time.time() - _T0), message),
          file=sys.stderr)
    sys.stderr.flush()


def note(message):
    """An indented detail under the current step, on stderr."""
    print("    " + message, file=sys.stderr)
    sys.stderr.flush()


def result(value):
    """A result other tools read (an image URI, an endpoint name): stdout, one line."""
    print(value)
    sys.stdout.flush()


def fail(error):
    """Print a DeployError the way lib.sh's die does; the caller exits non-zero."""
    print("ERROR: %s" % error.what, file=sys.stderr)
    if error.todo:
        print("       what to do: %s" % error.todo, file=sys.stderr)
    sys.stderr.flush()
