"""Suite-wide gates: async hygiene (tests/hygiene.py: no task, socket, pty or child
process outlives its test) and the opt-in hardware tests (``--hil-port=/dev/ttyUSB0``)."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.hygiene"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hil-port",
        default=None,
        help="serial port of a real router (e.g. /dev/ttyUSB0); hardware tests skip without it",
    )
    parser.addoption(
        "--hil-address",
        default=None,
        help="full driver address of the real router (default: modbus-rtu://PORT?unit=1)",
    )
    parser.addoption(
        "--hil-keys",
        default=None,
        help="key store the real router was provisioned from, and its id in it (DIR:ROUTER): "
        "clearing its e-stop is an authenticated command",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hil = config.getoption("--hil-port")
    skip = pytest.mark.skip(reason="needs real router hardware: pass --hil-port=/dev/ttyUSB0")
    for item in items:
        if "hil" in item.keywords and not hil:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def twin_keys(tmp_path_factory: pytest.TempPathFactory):
    """A key store for bench-4, shared by the twin tests (the twin reads the routers' and
    meters' private keys from it, the tests seal with the controller's)."""
    from firmware_bridge.keystore import KeyStore
    from tests.twin_support import SCENARIO

    return KeyStore.init(tmp_path_factory.mktemp("twin") / "keys", SCENARIO)


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels() -> None:
    """The planner's Numba kernels compiled (or loaded: about a second) before the first
    test, so that on a fresh machine no test that checks a command's stderr is the one
    told they are compiling (tests/test_kernel_cache.py checks that notice)."""
    from router.kernels import PLANNER, ensure_kernels

    ensure_kernels(PLANNER)


@pytest.fixture(autouse=True)
def _no_cli_log_handler_after_the_test():
    """A test that calls ``router.cli.main`` in process gets its stderr log handler
    (router/cli/logs.py), bound to that test's captured stderr: not beyond the test."""
    yield
    import logging

    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "ppr", False)]:
        root.removeHandler(handler)
