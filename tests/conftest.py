import subprocess
from collections.abc import Iterator

import pytest


def _leftovers() -> list[str]:
    """Namespaces, links and processes that test clusters (named t<hex>) leave behind."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    procs = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found = [f"netns {line.split()[0]}" for line in netns.splitlines()
             if line.startswith("ksvc-t")]
    found += [f"link {line.split(': ')[1]}" for line in links.splitlines()
              if ": ksvc-t" in line]
    found += [f"process {line.strip()}" for line in procs.splitlines()
              if "kubesvc.node.shim" in line or "kubesvc up" in line]
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_leaks() -> Iterator[None]:
    """After the whole suite, no namespace, link or process of a test cluster may remain."""
    before = set(_leftovers())
    yield
    leaked = sorted(set(_leftovers()) - before)
    assert not leaked, f"the tests leaked: {leaked}"
