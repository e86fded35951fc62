"""Which tier each test module belongs to (docs/tests.md): tests/conftest.py marks every test with its module's tier,
and `make test-unit` runs the unit tier alone; ANY_STACK says which the MXNet 1.4.1 run leaves out, and why. A module not named here is a unit module; in the unit tier a test that
starts a server fails saying to name its module here (helpers.RunningServer checks SSD_TEST_TIER)."""

SERVER = frozenset([
    "test_server", "test_hostile_inputs", "test_batch", "test_multimodel", "test_server_batching", "test_faults",
    "test_drain", "test_soak", "test_entry_point", "test_stock_toolkit", "test_bench", "test_page",
    "test_serving_config", "test_int8_check", "test_quantize", "test_export", "test_demo",
])
CONTAINER = frozenset(["test_container", "test_sdk_local"])

# Modules whose code under test is the same on both MXNet stacks: pure Python and Pillow/numpy, with no MXNet,
# GluonCV, Multi Model Server or SageMaker toolkit in its path, run by the same interpreter and the same pins
# (requirements/common.txt) in both venvs. They get the `any_stack` marker and the MXNet 1.4.1 run leaves them out
# (`-m "not any_stack"`): run there they repeat the MXNet 1.9.1 run's result and can catch nothing it misses.
# A test elsewhere that is the same on both stacks carries @pytest.mark.any_stack itself, with its reason.
ANY_STACK = {
    "test_front_unit": "the front door against an in-process stand-in for MMS: no MMS, no MXNet",
    "test_fuzz": "request decoding: Pillow and numpy, the same pins in both venvs",
    "test_decoder": "image decoding: Pillow and numpy",
    "test_request": "request bodies and parameters: no MXNet",
    "test_response": "JSON and picture encoding: Pillow",
    "test_environment": "settings parsing: pure Python",
    "test_memory": "cgroup files and sizing arithmetic: pure Python",
    "test_timing": "stage timings, EMF and Server-Timing text: pure Python",
    "test_soak_criterion": "the soak's memory criterion on recorded series: numbers only",
    "test_soak": "the in-process soak: the ei image's short container soak (test_container) runs the same criterion "
                 "on the EI stack's MMS 1.0.5 and MXNet 1.4.1, and the leaking handler shows the criterion, not the stack",
    "test_figures": "rendering the docs' figures from results files: text only",
    "test_bench_timeline": "the bench's timeline arithmetic: numbers only",
    "test_bench_hops": "the hop profile's arithmetic on perf's text: numbers only",
    "test_bench_compare": "a commit's trees out of git and the import path each side gets: the bench runs on MXNet 1.9.1 "
                          "only",
    "test_bench_standin": "the bench's stand-in model: the bench measures on MXNet 1.9.1 only",
    "test_supervision": "the launcher's exit-status table and its watch of a stand-in process: pure Python, no MMS started",
    "test_server_process": "ssd_tools.server_process on stand-in processes: no MXNet, no MMS (every server test starts the real "
                     "server with it on both stacks)",
}
# tests/deploy/* are the deploy tier; in test_page, the tests that use the browser fixture are the browser tier
BROWSER_FIXTURE = "browser"


def tier_of(module_path, fixture_names):
    """The tier of a test in the module at `module_path` that uses `fixture_names`."""
    parts = module_path.replace("\\", "/").split("/")
    name = parts[-1][:-3] if parts[-1].endswith(".py") else parts[-1]
    if "deploy" in parts[:-1]:
        return "deploy"
    if name in CONTAINER:
        return "container"
    if BROWSER_FIXTURE in fixture_names:
        return "browser"
    if name in SERVER:
        return "server"
    return "unit"


def runs_the_same_on_any_stack(module_path):
    """Whether the module at `module_path` is in ANY_STACK."""
    name = module_path.replace("\\", "/").split("/")[-1]
    return (name[:-3] if name.endswith(".py") else name) in ANY_STACK
