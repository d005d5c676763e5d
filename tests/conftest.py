"""Fixtures shared by the test modules."""
import logging

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
