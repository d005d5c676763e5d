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


def pytest_collection_modifyitems(items):
    for item in items:
        if INTEGRATION in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.slow)
