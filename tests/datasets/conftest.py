"""The Human3.6M fixtures (``h36m_fixtures``), written once per session (images) or per test (keypoints), and the
MPI-INF-3DHP ones (``mpi_inf_3dhp_fixtures``), per test."""
import pytest

from datasets.synthetic.rigs import h36m_like_ring
from tests.datasets.h36m_fixtures import write_dataset, write_learnable, write_toolbox
from tests.datasets.mpi_inf_3dhp_fixtures import write_root


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


@pytest.fixture
def mpi_inf_3dhp_root(tmp_path):
    return write_root(tmp_path / "mpi_inf_3dhp")
