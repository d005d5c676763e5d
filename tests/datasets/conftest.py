"""The Human3.6M fixtures (``h36m_fixtures``), written once per session (images) or per test (keypoints), and the
made-up RHD layout (``rhd_fixtures``), once per session."""
import pytest

from datasets.synthetic.rigs import h36m_like_ring
from tests.datasets.h36m_fixtures import write_dataset, write_learnable, write_toolbox
from tests.datasets.panoptic_fixtures import write_panoptic
from tests.datasets.rhd_fixtures import write_rhd
from tests.datasets.ski_fixtures import write_ski


@pytest.fixture(scope="session")
def toolbox(tmp_path_factory):
    return write_toolbox(tmp_path_factory.mktemp("toolbox"))


@pytest.fixture(scope="session")
def learnable(tmp_path_factory):
    return write_learnable(tmp_path_factory.mktemp("learnable"))


@pytest.fixture
def h36m_root(tmp_path):
    write_dataset(tmp_path, h36m_like_ring(4))
    return tmp_path


@pytest.fixture(scope="session")
def rhd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rhd")
    write_rhd(root)
    return root


@pytest.fixture
def ski_root(tmp_path):
    return write_ski(tmp_path / "ski")


@pytest.fixture(scope="session")
def panoptic_root(tmp_path_factory):
    return write_panoptic(tmp_path_factory.mktemp("panoptic"))
