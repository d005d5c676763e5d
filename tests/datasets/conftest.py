"""The data fixtures of the dataset tests, each written by its test module's fixture writer (never licensed data):
Human3.6M (images once per session, keypoints per test), RHD and Panoptic once per session, Ski-Pose and
MPI-INF-3DHP per test."""
import pytest

from datasets.synthetic.rigs import h36m_like_ring
from tests.datasets.h36m_fixtures import write_dataset, write_learnable, write_toolbox
from tests.datasets.mpi_inf_3dhp_fixtures import write_root
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


@pytest.fixture
def mpi_inf_3dhp_root(tmp_path):
    return write_root(tmp_path / "mpi_inf_3dhp")
