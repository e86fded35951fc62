"""The hop profile's arithmetic (bench/hops.py): perf's scheduler events laid out per request, part by part of the
path, from perf script lines written as perf writes them (`make bench-hops` records real ones)."""

from helpers import load_bench_module


def hops():
    return load_bench_module("hops")


# One request of 1 ms (100.000 to 100.001 s): the client (pid 10) wakes the front door (pid 20) on the other CPU,
# which was idle, and sleeps 10 us before the front door runs; the front door wakes MMS's Netty loop (pid 30, a Java
# thread) on its own CPU, then sleeps; Netty answers it back (the same CPU, busy: not an idle wake-up), and the front
# door wakes the client. A JIT compiler thread of the JVM runs 0.1 ms in between, and a process of no part of the
# path (pid 99) runs outside the window.
LINES = """
           other    99/99    [001]   99.999000: sched:sched_switch: prev_comm=other prev_pid=99 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
         swapper     0/0     [000]   99.999900: sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=python next_pid=10 next_prio=120
          python    10/10    [000]  100.000000: sched:sched_waking: comm=python pid=21 prio=120 target_cpu=001
         swapper     0/0     [001]  100.000050: sched:sched_wakeup: comm=python pid=21 prio=120 target_cpu=001
         swapper     0/0     [001]  100.000060: sched:sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=python next_pid=21 next_prio=120
          python    10/10    [000]  100.000050: sched:sched_switch: prev_comm=python prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
          python    20/21    [001]  100.000300: sched:sched_waking: comm=epollEventLoopG pid=31 prio=120 target_cpu=001
          python    20/21    [001]  100.000310: sched:sched_wakeup: comm=epollEventLoopG pid=31 prio=120 target_cpu=001
          python    20/21    [001]  100.000320: sched:sched_switch: prev_comm=python prev_pid=21 prev_prio=120 prev_state=S ==> next_comm=epollEventLoopG next_pid=31 next_prio=120
 epollEventLoopG    30/31    [001]  100.000500: sched:sched_switch: prev_comm=epollEventLoopG prev_pid=31 prev_prio=120 prev_state=S ==> next_comm=C2 CompilerThre next_pid=32 next_prio=120
 C2 CompilerThre    30/32    [001]  100.000600: sched:sched_waking: comm=python pid=21 prio=120 target_cpu=001
 C2 CompilerThre    30/32    [001]  100.000600: sched:sched_wakeup: comm=python pid=21 prio=120 target_cpu=001
 C2 CompilerThre    30/32    [001]  100.000600: sched:sched_switch: prev_comm=C2 CompilerThre prev_pid=32 prev_prio=120 prev_state=S ==> next_comm=python next_pid=21 next_prio=120
          python    20/21    [001]  100.000900: sched:sched_waking: comm=python pid=10 prio=120 target_cpu=000
         swapper     0/0     [000]  100.000940: sched:sched_wakeup: comm=python pid=10 prio=120 target_cpu=000
         swapper     0/0     [000]  100.000950: sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=python next_pid=10 next_prio=120
          python    20/21    [001]  100.000950: sched:sched_switch: prev_comm=python prev_pid=21 prev_prio=120 prev_state=S ==> next_comm=other next_pid=99 next_prio=120
          python    10/10    [000]  100.002000: sched:sched_switch: prev_comm=python prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
           other    99/99    [001]  100.002000: sched:sched_switch: prev_comm=other prev_pid=99 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
"""
ROLES = {10: "client", 20: "front door", 30: "java"}


def test_perf_script_lines_are_read_with_thread_names_that_hold_spaces():
    events = hops().parse_perf_script("a line perf writes that is no event\n" + LINES)
    assert len(events) == 19 and events[2][:4] == (100.0, 0, 10, 10)
    compiler = [e for e in events if e[4] == "C2 CompilerThre"]
    assert len(compiler) == 3 and compiler[-1][6]["next_comm"] == "python"
    assert [e for e in events if e[6].get("next_pid") == "32"][0][6]["next_comm"] == "C2 CompilerThre"


def test_one_request_is_laid_out_part_by_part_with_its_wake_ups():
    module = hops()
    (request,), unseen = module.lay_out(module.parse_perf_script(LINES), [(100.0, 100.001)], ROLES)
    assert round(request["end_to_end"], 6) == 1.0
    assert round(request["client"], 6) == 0.1  # 0 to 0.05 ms, and from 0.95 ms to the window's end
    assert round(request["front door"], 6) == round(0.26 + 0.35, 6)  # 0.06-0.32 and 0.6-0.95 ms
    assert round(request["MMS Netty"], 6) == 0.18 and round(request["MMS other JVM threads"], 6) == 0.1
    assert request["Python worker"] == 0.0
    assert round(request["none_on_cpu"], 6) == 0.01  # the client sleeps at 0.05 ms, the front door runs at 0.06 ms
    assert request["wake_ups"] == 4 and request["wake_ups_onto_idle_cpu"] == 2
    assert [round(us) for us in request["wake_up_us"]] == [60, 20, 0, 50] and unseen == 0


def test_a_process_outside_the_path_and_time_outside_the_window_count_for_nothing():
    module = hops()
    (request,), _ = module.lay_out(module.parse_perf_script(LINES), [(100.0005, 100.0007)], ROLES)
    assert round(request["MMS Netty"], 6) == 0.0 and round(request["MMS other JVM threads"], 6) == 0.1
    assert round(request["front door"], 6) == 0.1 and round(request["none_on_cpu"], 6) == 0.0
    assert request["wake_ups"] == 1 and request["wake_ups_onto_idle_cpu"] == 0


def test_the_jvms_threads_are_told_apart_by_their_names():
    module = hops()
    assert module.java_part("W-9000-model") == "MMS worker thread"
    assert module.java_part("W-model-1-stdou") == "MMS output reader"
    assert module.java_part("epollEventLoopG") == "MMS Netty" and module.java_part("nioEventLoopGro") == "MMS Netty"
    assert module.java_part("C2 CompilerThre") == "MMS other JVM threads"


def test_the_summary_is_the_median_request_with_the_workers_own_stages_beside_it():
    module = hops()
    laid_out, _ = module.lay_out(module.parse_perf_script(LINES), [(100.0, 100.001), (100.0005, 100.0007)], ROLES)
    timeline = load_bench_module("measure").timeline  # each request's Server-Timing, as the lean client lays it out
    answered = timeline("queue;dur=0.5, worker;dur=0.1, read;dur=0.0, upstream;dur=0.8, front;dur=0.9", 1.2)
    summary = module.summarize(laid_out, [answered, timeline(None, 1.0)], unseen=3)
    assert summary["switches_not_in_trace"] == 3
    assert summary["requests"] == 2 and summary["worker_stages"] == 0.1 and summary["outside_worker"] == 0.8
    assert summary["wake_ups"] == 2.5 and summary["end_to_end"] == 0.6
    assert module.summarize([], [])["skipped"]


def test_a_stretch_whose_switch_onto_the_cpu_is_missing_starts_when_its_thread_was_woken():
    """As traced on this kind of virtual machine: the front door is woken onto the idle CPU 1 at 100.0 s, and the trace
    has neither its wake-up there nor its switch onto it, only its switch off at 100.0005 s."""
    module = hops()
    lines = """
         swapper     0/0     [001]   99.990000: sched:sched_switch: prev_comm=other prev_pid=99 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          python    10/10    [000]  100.000000: sched:sched_waking: comm=python pid=21 prio=120 target_cpu=001
          python    20/21    [001]  100.000500: sched:sched_switch: prev_comm=python prev_pid=21 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
"""
    (request,), unseen = module.lay_out(module.parse_perf_script(lines), [(99.9999, 100.001)], ROLES)
    assert unseen == 1 and round(request["front door"], 6) == 0.5
    assert request["wake_ups"] == 1 and request["wake_ups_onto_idle_cpu"] == 1 and request["wake_up_us"] == []


def test_a_missing_stretch_starts_at_its_wake_up_even_when_its_thread_wakes_another_before_it_leaves():
    """The thread the trace never saw arrive on CPU 1 wakes a JVM thread there before leaving: its own event proves it
    ran, and does not move its start."""
    module = hops()
    lines = """
         swapper     0/0     [001]   99.990000: sched:sched_switch: prev_comm=other prev_pid=99 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          python    10/10    [000]  100.000000: sched:sched_waking: comm=python pid=21 prio=120 target_cpu=001
          python    20/21    [001]  100.000400: sched:sched_waking: comm=epollEventLoopG pid=31 prio=120 target_cpu=001
          python    20/21    [001]  100.000500: sched:sched_switch: prev_comm=python prev_pid=21 prev_prio=120 prev_state=R ==> next_comm=epollEventLoopG next_pid=31 next_prio=120
 epollEventLoopG    30/31    [001]  100.000900: sched:sched_switch: prev_comm=epollEventLoopG prev_pid=31 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
"""
    (request,), unseen = module.lay_out(module.parse_perf_script(lines), [(99.9999, 100.001)], ROLES)
    assert unseen == 1 and round(request["front door"], 6) == 0.5 and round(request["MMS Netty"], 6) == 0.4
    assert request["wake_ups"] == 2 and [round(us) for us in request["wake_up_us"]] == [100]
