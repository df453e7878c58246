"""The system tier: every test under tests/system/ carries the `system` marker, so `pytest -m "not system"`
(`make test-fast`) leaves them out. Their fixtures that start real servers are here too."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.loopback import Redis, start_cluster
from tests.support.postgres import Cluster

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    """redis-server on a free loopback port for this test, stopped afterwards."""
    server = Redis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A Postgres cluster of the module's own (the fault tests freeze, lock and stop it), stopped afterwards."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
