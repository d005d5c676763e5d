"""Fixtures shared by the test modules, and the slow tier: every test under tests/integration/ is marked ``slow``
(``pytest -m "not slow"`` leaves the end-to-end runs out)."""
import logging
from pathlib import Path

import pytest


@pytest.fixture
def epipose_log(caplog):
    """``caplog`` that also sees the toolbox's "epipose" logger, which stops propagating once a run has set up its
    handlers (``core.engine.logger``)."""
    logger = logging.getLogger("epipose")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="epipose")
    yield caplog
    logger.removeHandler(caplog.handler)


INTEGRATION = Path(__file__).resolve().parent / "integration"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the clone


@pytest.fixture(scope="session")
def shared_data():
    """``shared_data("h36m/camera-parameters.json")``: that path under ``../shared/data``, or the test is skipped,
    naming the path it did not find (the shared folder is read, never committed, and absent beside a bare clone)."""
    def path(relative: str) -> Path:
        found = SHARED_DATA / relative
        if not found.exists():
            pytest.skip(f"shared data not found at {found}")
        return found
    return path


def pytest_collection_modifyitems(items):
    for item in items:
        if INTEGRATION in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.slow)
