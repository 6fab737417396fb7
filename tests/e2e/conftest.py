from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesvc.testing import Cluster

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def seed() -> Path:
    return SEED
