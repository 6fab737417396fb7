"""ipvs mode (root): this machine's kernel has no IPVS, so the mode must refuse at once, naming
the module; the mode itself is tested on a real kernel's IPVS in a throwaway VM (tests/vm),
booted once for every scenario of tests/vm/ipvs_scenarios.py."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from kubesvc.kernel.ipvs import IPVSUnavailable, require_ipvs
from vm import harness
from vm.ipvs_scenarios import SCENARIOS

pytestmark = [pytest.mark.root]

PROJECT = Path(__file__).resolve().parents[2]
VM_TIMEOUT = 900.0  # emulated: slow, and slower still when the machine is busy


def kernel_has_ipvs() -> bool | None:
    """CONFIG_IP_VS of the running kernel, if it publishes its configuration."""
    config = Path("/proc/config.gz")
    if not config.exists():
        return None
    return any(line.startswith(("CONFIG_IP_VS=y", "CONFIG_IP_VS=m"))
               for line in gzip.decompress(config.read_bytes()).decode().splitlines())


async def test_ipvs_mode_fails_fast_without_ipvs_in_the_kernel() -> None:
    if kernel_has_ipvs():
        await require_ipvs()  # a kernel with IPVS: nothing to refuse
        return
    with pytest.raises(IPVSUnavailable, match=r"kernel module ip_vs .*CONFIG_IP_VS"):
        await require_ipvs()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.fail("the IPVS tests need root (network namespaces in the VM)")
    try:
        image = harness.ensure_image()
    except harness.VMError as exc:
        pytest.fail(f"cannot build the test VM: {exc}")
    share = tmp_path_factory.mktemp("vm")
    job = harness.python_job(PROJECT, sys.executable,
                             ["tests/vm/ipvs_scenarios.py", "/vmshare/results.json"])
    run = harness.run(image, job, share, VM_TIMEOUT)
    found = share / "results.json"
    if not found.exists():
        pytest.fail(f"the VM job failed (rc {run.rc}) before any scenario ran:\n"
                    f"{run.log[-4000:]}\n{run.console[-2000:]}")
    data: dict[str, Any] = json.loads(found.read_text())
    data["_log"] = run.log
    return data


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_in_the_vm(results: dict[str, Any], scenario: str) -> None:
    outcome = results.get(scenario)
    assert outcome is not None, f"{scenario} did not run:\n{results['_log'][-3000:]}"
    assert outcome["ok"], outcome["detail"]
    print(f"{scenario} ({outcome['seconds']}s): {outcome['detail']}")
