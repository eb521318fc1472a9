"""The cluster the fault tests run against: deploy/cluster's simulated hosts.

If a cluster is up already (`make cluster-up`), the tests use it and leave it up;
otherwise they bring one up and take it down at the end, whatever happens."""
from __future__ import annotations

import os

import pytest

from tests.support import cluster


@pytest.fixture(scope="session")
def hosts():
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root (network namespaces): run them as root")
    started = False
    if not cluster.is_up():
        cluster.sh("down")  # leftovers of a run that was killed
        cluster.sh("up", timeout=900)
        started = True
    try:
        yield cluster
    finally:
        if started:
            cluster.sh("down")
