"""Which tier each test module belongs to (docs/tests.md): tests/conftest.py marks every test with its module's tier,
and `make test-unit` runs the unit tier alone. A module not named here is a unit module; in the unit tier a test that
starts a server fails saying to name its module here (helpers.RunningServer checks SSD_TEST_TIER)."""

SERVER = frozenset([
    "test_server", "test_hostile_inputs", "test_batch", "test_multimodel", "test_server_batching", "test_faults",
    "test_drain", "test_soak", "test_entry_point", "test_stock_toolkit", "test_bench", "test_page",
    "test_serving_config", "test_int8_check", "test_quantize", "test_export", "test_demo",
])
CONTAINER = frozenset(["test_container", "test_sdk_local"])
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
