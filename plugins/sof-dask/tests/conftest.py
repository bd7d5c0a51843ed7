"""Fixtures shared by the dask executor's tests: one real LocalCluster per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from distributed import LocalCluster
from sof_dask import close_clients, plugin

from sof_core.testing import make_engine


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of an in-process cluster (threads), closed after the module."""
    cluster = LocalCluster(n_workers=1, threads_per_worker=8, processes=False,
                           dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        # The kept client would otherwise try to reconnect for 10 s after the cluster goes,
        # then log its failure into whatever test runs then.
        close_clients(cluster.scheduler_address)
        cluster.close()


@pytest.fixture
def dask_engine(scheduler: str) -> Any:
    """``dask_engine(skills, **config)``: an engine running every stage on ``scheduler``."""

    def made(skills: list[Any], **config: Any) -> Any:
        return make_engine(skills, plugins=[("dask", plugin)], executor="dask",
                           plugin_settings={"dask": {"scheduler": scheduler}}, **config)

    return made
