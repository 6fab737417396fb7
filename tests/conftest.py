import subprocess
from collections.abc import Iterator

import pytest

from kubesvc.testing import STARTED


def _leftovers() -> list[str]:
    """Namespaces, links and processes of the clusters this session started that remain."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    procs = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found = []
    for cluster in STARTED:
        tag = f"ksvc-{cluster.name}"
        found += [f"netns {line.split()[0]}" for line in netns.splitlines()
                  if line.split()[0] == tag or line.startswith(tag + "-")]
        found += [f"link {line.split(': ')[1]}" for line in links.splitlines()
                  if f": {tag}h" in line]
        found += [f"process {line.strip()}" for line in procs.splitlines()
                  if str(cluster.state_dir) in line]
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_leaks() -> Iterator[None]:
    """After the whole suite, no namespace, link or process of a test cluster may remain."""
    yield
    leaked = _leftovers()
    assert not leaked, f"the tests leaked: {leaked}"
