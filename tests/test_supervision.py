"""The launcher's exit statuses: one table, listed by --help, named on every exit path, and what watch() returns
for a model server that exited, a model no worker has, and a stop request (a real process stands in for MMS)."""
import ast
import subprocess
import sys

import pytest

from ssd_serving import serving, supervision
from ssd_serving.environment import Environment
from ssd_serving.model_server import ModelServer, internal_port
from ssd_serving.supervision import EXIT_MODEL_LOST, EXIT_MODEL_SERVER_EXITED, EXIT_STATUSES, EXIT_STOPPED, watch

LAUNCHER_MODULES = (serving, supervision)


def test_every_exit_status_is_in_the_one_table_once():
    named = {value for name, value in vars(supervision).items() if name.startswith("EXIT_") and name != "EXIT_STATUSES"}
    listed = [status for status, _ in EXIT_STATUSES]
    assert sorted(listed) == sorted(named) == list(range(len(listed)))


def test_help_lists_every_exit_status_from_the_table(capsys):
    with pytest.raises(SystemExit):
        serving.main(["--help"])
    printed = " ".join(capsys.readouterr().out.split())
    for status, meaning in EXIT_STATUSES:
        assert "%d %s" % (status, " ".join(meaning.split())) in printed, printed


def _bare_exit_statuses(module):
    """(line, code) of each `return <number>` and `sys.exit(<number>)` in the module's source."""
    with open(module.__file__) as stream:
        tree = ast.parse(stream.read())
    found = []
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Return) else None
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "exit" and node.args:
            value = node.args[0]
        number = getattr(value, "value", getattr(value, "n", None))  # ast.Constant since Python 3.8, ast.Num before
        if isinstance(number, int) and not isinstance(number, bool):
            found.append((node.lineno, ast.dump(node)))
    return found


@pytest.mark.parametrize("module", LAUNCHER_MODULES, ids=lambda module: module.__name__)
def test_every_exit_path_names_its_status(module):
    assert _bare_exit_statuses(module) == []


def test_a_bare_exit_status_is_found(tmp_path):
    # the scan above finds what it looks for: a launcher module with `return 3` and `sys.exit(2)` fails it
    source = tmp_path / "launcher.py"
    source.write_text("import sys\n\ndef serve():\n    return 3\n\nsys.exit(2)\n")

    class Module(object):
        __file__ = str(source)
    assert [line for line, _ in _bare_exit_statuses(Module)] == [4, 6]


@pytest.fixture()
def stand_in_server():
    """A ModelServer whose process is a real one that is not MMS: watch() reads only its process and health."""
    server = ModelServer(internal_port(), Environment.defaults(), host="127.0.0.1")
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
        server.process.wait()
    server.cleanup()


def test_a_model_server_that_exited_stops_the_launcher_with_its_status(stand_in_server, caplog):
    stand_in_server.process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
    stand_in_server.process.wait()
    assert watch(stand_in_server, unhealthy_limit=60, poll=0.01) == EXIT_MODEL_SERVER_EXITED
    assert "exited with status 7; stopping with exit status %d" % EXIT_MODEL_SERVER_EXITED in caplog.text


def test_a_model_no_worker_has_stops_the_launcher_after_the_limit(stand_in_server, caplog):
    stand_in_server.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # no worker marks its model loaded in the server's ready folder
    assert watch(stand_in_server, unhealthy_limit=0, poll=0.01) == EXIT_MODEL_LOST
    assert "/ping answers 503 until a worker has the model loaded" in caplog.text
    assert "no worker has had the model loaded for" in caplog.text


def test_a_stop_request_ends_the_watch_with_status_0(stand_in_server):
    stand_in_server.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert watch(stand_in_server, unhealthy_limit=60, poll=0.01, stop_requested=lambda: True) == EXIT_STOPPED
