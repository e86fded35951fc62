"""The soak's memory criterion (ssd_tools.soak judge_memory) on recorded and made-up RSS samples: a steady leak is
caught, a process that fills up and flattens (below its cap, for the JVM) is not, and a process that was never seen
fails instead of passing on nothing."""
import subprocess
import sys
import time

import psutil
import pytest

from ssd_tools.soak import JVM_NATIVE_ALLOWANCE_MB, ProcessWatch, heap_cap_bytes, judge_memory

MB = 1e6
CAP = 327 * 1024 * 1024  # -Xmx327m, the launcher's heap cap with the default settings


def run(seconds=60, every=2, **series):
    """Samples every `every` s of a run of `seconds`: {group: f(t) in MB}."""
    return [(t, dict((group, int(f(t) * MB)) for group, f in series.items()))
            for t in range(0, seconds + 1, every)]


def flat(level):
    return lambda t: level


def rises_then_flattens(start, top, until):
    return lambda t: start + (top - start) * min(1.0, t / float(until))


def grows(start, per_second):
    return lambda t: start + per_second * t


def test_a_process_that_fills_up_and_flattens_is_not_a_leak():
    # the shape of the red CI run (issue 25): the JVM from 229 to 294 MB a minute in, its heap filling toward its cap
    samples = run(jvm=rises_then_flattens(190, 294, 50), workers=rises_then_flattens(420, 498, 15),
                  **{"front door": rises_then_flattens(200, 225, 20)})
    verdicts, problems = judge_memory(samples, {"jvm": CAP})
    assert problems == []
    assert verdicts["jvm"]["check"] == "bound" and verdicts["jvm"]["held"]
    assert verdicts["jvm"]["bound MB"] == pytest.approx(CAP / MB + JVM_NATIVE_ALLOWANCE_MB)
    assert verdicts["workers"]["check"] == "trend" and verdicts["workers"]["held"]


def test_a_steady_leak_is_caught_in_a_short_run_and_a_long_one():
    for seconds, every, per_second in ((60, 2, 1.0), (1800, 10, 0.05)):
        samples = run(seconds, every, jvm=flat(250), workers=grows(500, per_second), **{"front door": flat(200)})
        verdicts, problems = judge_memory(samples, {"jvm": CAP})
        assert [p for p in problems if p.startswith("workers RSS still rising at the end")], (seconds, problems)
        assert verdicts["workers"]["held"] is False
        assert verdicts["front door"]["held"] and verdicts["jvm"]["held"]


def test_a_jvm_over_its_heap_cap_and_allowance_is_caught_however_flat():
    over = CAP / MB + JVM_NATIVE_ALLOWANCE_MB + 20
    samples = run(jvm=flat(over), workers=flat(500), **{"front door": flat(200)})
    verdicts, problems = judge_memory(samples, {"jvm": CAP})
    assert verdicts["jvm"]["held"] is False
    assert len(problems) == 1 and problems[0].startswith("jvm RSS peaked at"), problems


def test_samples_that_saw_no_process_fail_instead_of_passing_on_nothing():
    # what ProcessWatch.groups() gives when it finds none of the server's processes: zeros
    samples = run(jvm=flat(0), workers=flat(0), **{"front door": flat(0)})
    _, problems = judge_memory(samples, {"jvm": CAP})
    for group in ("front door", "jvm", "workers"):
        assert "no %s process was seen in 31 of 31 memory samples" % group in problems
    _, problems = judge_memory(run(workers=flat(500)), {"jvm": CAP})
    assert "no jvm process was seen in 31 of 31 memory samples" in problems
    assert "no front door process was seen in 31 of 31 memory samples" in problems


def test_too_few_samples_is_a_problem():
    _, problems = judge_memory(run(seconds=4, jvm=flat(250), workers=flat(500), **{"front door": flat(200)}))
    assert problems == ["too few memory samples (3; at least 6) to judge memory"]


def test_the_heap_cap_is_read_from_the_jvm_command_line():
    assert heap_cap_bytes("java -XX:+ExitOnOutOfMemoryError -Xmx327m -cp x Main") == CAP
    assert heap_cap_bytes("java -Xmx1g -Xmx512M Main") == 512 * 1024 * 1024  # the last one wins, as for the JVM
    assert heap_cap_bytes("java -Xmx2048k Main") == 2048 * 1024
    assert heap_cap_bytes("java -Xms256m -cp x Main") is None


def test_a_soak_whose_jvm_has_no_cap_reports_it(tmp_path):
    # the real ProcessWatch over a real process tree with a "java" child that has no -Xmx
    fake_jvm = tmp_path / "java"
    fake_jvm.write_text("#!%s\nimport time\ntime.sleep(30)\n" % sys.executable)
    fake_jvm.chmod(0o755)
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.call([sys.argv[1]])",
                               str(fake_jvm)])
    try:
        watch = ProcessWatch(parent.pid)
        for _ in range(100):
            if watch.groups()["jvm"]:
                break
            time.sleep(0.1)
        assert watch.groups()["jvm"] > 0
        assert watch.caps == {"jvm": None}
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()
