"""The one way the bench, the soak and the tests start the real server (ssd_tools.server_process), on stand-in
processes: a start that fails shows the log's tail, and stop() leaves nothing running, a process started in a session
of its own (as the server starts MMS) included."""
import os
import sys
import time

import psutil
import pytest

from ssd_tools.server_process import ServerFailed, ServerProcess

# Stands in for a server that starts a process in a session of its own (as serving starts MMS), prints its pid,
# and ignores SIGTERM, so that stop() must reach for SIGKILL and for what it started.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("child %d" % child.pid, flush=True)
time.sleep(600)
"""


def printed_pid(server):
    for _ in range(200):
        for line in server.output().splitlines():
            if line.startswith("child "):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError("the stand-in printed no child:\n%s" % server.output())


def test_a_server_that_exits_fails_with_its_status_and_log_tail():
    server = ServerProcess(command=[sys.executable, "-c", "print('the model folder is empty'); raise SystemExit(3)"],
                           label="the stand-in")
    try:
        with pytest.raises(ServerFailed, match="the stand-in exited with status 3; the end of its log") as failed:
            server.wait_healthy(timeout=60, poll_s=0.05)
        assert "the model folder is empty" in str(failed.value)
    finally:
        server.stop()
    assert not os.path.exists(server.log_path)  # a temporary log goes with the server


def test_stop_ends_the_server_and_what_it_started_in_its_own_session(tmp_path):
    log_path = str(tmp_path / "stand-in.log")
    server = ServerProcess(command=[sys.executable, "-c", STUBBORN], log_path=log_path)
    child = psutil.Process(printed_pid(server))
    try:
        assert os.getpgid(child.pid) != os.getpgid(server.process.pid)
        server.stop(grace_s=1, leftover_grace_s=1)
        assert server.process.returncode is not None
        gone, alive = psutil.wait_procs([child], timeout=5)
        assert not alive, "stop() left %s running" % alive
    finally:
        if child.is_running():  # only where stop() failed: this test leaves nothing behind either
            child.kill()
    assert os.path.isfile(log_path)  # a log asked for is kept
    server.stop()  # a second stop does nothing
