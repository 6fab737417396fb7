"""host-local IPAM from the node's pod CIDR."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesvc.node.ipam import IPAM, IPAMExhausted


def test_allocates_after_gateway_and_is_idempotent(tmp_path: Path) -> None:
    ipam = IPAM(tmp_path, "10.244.0.0/24")
    assert ipam.allocate("a") == "10.244.0.2"
    assert ipam.allocate("b") == "10.244.0.3"
    assert ipam.allocate("a") == "10.244.0.2"
    assert ipam.allocations() == {"10.244.0.2": "a", "10.244.0.3": "b"}


def test_release_and_round_robin(tmp_path: Path) -> None:
    ipam = IPAM(tmp_path, "10.244.0.0/24")
    ipam.allocate("a")
    ipam.allocate("b")
    ipam.release("a")
    assert ipam.lookup("a") is None
    # Like host-local, a just-released address is not handed out again at once.
    assert ipam.allocate("c") == "10.244.0.4"


def test_survives_restart(tmp_path: Path) -> None:
    IPAM(tmp_path, "10.244.1.0/24").allocate("a")
    again = IPAM(tmp_path, "10.244.1.0/24")
    assert again.lookup("a") == "10.244.1.2"
    assert again.allocate("b") == "10.244.1.3"
    assert (tmp_path / "ipam" / "10.244.1.0_24" / "10.244.1.2").read_text().strip() == "a"


def test_exhaustion_skips_network_gateway_and_broadcast(tmp_path: Path) -> None:
    ipam = IPAM(tmp_path, "10.244.0.0/29")  # .0 network, .1 gateway, .7 broadcast
    got = {ipam.allocate(str(i)) for i in range(5)}
    assert got == {f"10.244.0.{n}" for n in range(2, 7)}
    with pytest.raises(IPAMExhausted):
        ipam.allocate("one-too-many")
    ipam.release("3")
    assert ipam.allocate("again") in got
