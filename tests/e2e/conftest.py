import pytest

from tests.harness.world import World


@pytest.fixture
def world(consul_agent, ingest, base_dir):
    test_world = World(consul_agent, ingest, base_dir)
    try:
        yield test_world
    finally:
        test_world.close()
