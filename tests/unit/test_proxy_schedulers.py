"""The schedulers, against IPVS's own semantics: sequences worked out from the kernel's
ip_vs_<name>.c, and choices a real 6.1 kernel made (research/ipvs-vm.md)."""

import random
from collections import Counter

import pytest

from kubesvc.proxy.schedulers import (
    USERSPACE_SCHEDULERS,
    DestinationHashing,
    LocalCursor,
    SourceHashing,
    choose_scheduler,
    hash_32,
    ip_int,
    new_scheduler,
    pod_weight,
)


def picks(name: str, weights: list[int], n: int, **kwargs: object) -> list[int | None]:
    scheduler = new_scheduler(name, weights, **kwargs)  # type: ignore[arg-type]
    return [scheduler.pick("10.244.0.9", "10.96.0.10") for _ in range(n)]


def test_rr_walks_the_backends_in_turn_and_skips_quiesced_ones() -> None:
    assert picks("rr", [1, 1, 1], 6) == [0, 1, 2, 0, 1, 2]
    assert picks("rr", [5, 1, 0], 4) == [0, 1, 0, 1]  # rr ignores weights but 0
    assert picks("rr", [0, 0], 2) == [None, None]


def test_rr_skips_failed_backends_and_moves_past_them() -> None:
    rr = new_scheduler("rr", [1, 1, 1])
    assert rr.pick("c", "d", skip={0}) == 1
    assert rr.pick("c", "d") == 2
    assert rr.pick("c", "d", skip={0, 1, 2}) is None


def test_cursor_is_shared_by_schedulers_that_use_it() -> None:
    cursor = LocalCursor()
    a, b = (new_scheduler("rr", [1, 1], cursor=cursor) for _ in range(2))
    assert [a.pick("c", "d"), b.pick("c", "d"), a.pick("c", "d")] == [0, 1, 0]


@pytest.mark.parametrize(("weights", "cycle"), [
    ([3, 1], [0, 0, 0, 1]),
    ([4, 3, 2], [0, 0, 1, 0, 1, 2, 0, 1, 2]),
    ([2, 2], [0, 1]),  # the gcd makes it one pass
    ([4, 2], [0, 0, 1]),
    ([1, 0, 2], [2, 0, 2]),
])
def test_wrr_interleaves_by_weight_as_ip_vs_wrr(weights: list[int], cycle: list[int]) -> None:
    assert picks("wrr", weights, 2 * len(cycle)) == cycle * 2


def test_wrr_shares_follow_the_weights() -> None:
    counts = Counter(picks("wrr", [5, 3, 1], 90))
    assert counts == {0: 50, 1: 30, 2: 10}


def test_lc_takes_the_fewest_connections_first_on_ties() -> None:
    active = [3, 1, 1, 0]
    lc = new_scheduler("lc", [1, 1, 1, 0], loads=active.__getitem__)
    assert lc.pick("c", "d") == 1  # the weight-0 backend is idle but quiesced
    assert lc.pick("c", "d", skip={1}) == 2


def test_wlc_divides_by_weight() -> None:
    active = [2, 3]
    assert new_scheduler("wlc", [1, 3], loads=active.__getitem__).pick("c", "d") == 1
    assert new_scheduler("wlc", [1, 1], loads=active.__getitem__).pick("c", "d") == 0


def test_sed_and_nq_differ_on_an_idle_but_lighter_backend() -> None:
    # sed: (active + 1) / weight is 1 for the first and 2/3 for the second.
    active = [0, 1]
    assert new_scheduler("sed", [1, 3], loads=active.__getitem__).pick("c", "d") == 1
    # nq never queues: the idle one wins whatever the weights.
    assert new_scheduler("nq", [1, 3], loads=active.__getitem__).pick("c", "d") == 0
    busy = [2, 1]
    assert new_scheduler("nq", [1, 3], loads=busy.__getitem__).pick("c", "d") == 1


def test_sed_and_nq_prefer_an_idle_backend_over_a_busy_one() -> None:
    active = [1, 0]
    for name in ("sed", "nq"):
        assert new_scheduler(name, [1, 1], loads=active.__getitem__).pick("c", "d") == 1


def test_hash_32_is_the_kernels() -> None:
    assert hash_32(0) == 0
    assert hash_32(1) == 0x61C88647 >> 24
    assert hash_32(ip_int("127.0.0.10")) == 10


def test_sh_splits_sources_as_a_real_kernel_did() -> None:
    # ip_vs_sh on Linux 6.1, real servers .2 then .3 added (the kernel lists .3 first), six
    # clients 127.0.0.20-25: .3 .3 .3 .3 .2 .2.
    sh = SourceHashing([1, 1])
    chosen = [sh.pick(f"127.0.0.{n}", "127.0.0.10") for n in range(20, 26)]
    assert chosen == [0, 0, 0, 0, 1, 1]


def test_dh_sends_one_destination_to_one_backend_as_a_real_kernel_did() -> None:
    dh = DestinationHashing([1, 1])
    assert {dh.pick(f"127.0.0.{n}", "127.0.0.10") for n in range(20, 26)} == {0}
    by_dest = {dh.pick("c", f"10.96.0.{n}") for n in range(1, 20)}
    assert by_dest == {0, 1}


def test_sh_table_repeats_each_backend_by_weight() -> None:
    sh = SourceHashing([2, 1, 0])
    assert sh.table[:9] == (0, 0, 1, 2, 0, 0, 1, 2, 0)
    # A weight-0 backend still takes a bucket per round (ip_vs_sh_reassign), never chosen.
    assert Counter(sh.table) == {0: 128, 1: 64, 2: 64}


def test_hashing_falls_back_past_quiesced_and_failed_backends() -> None:
    sh = SourceHashing([1, 1])
    home = sh.pick("10.0.0.1", "d")
    assert home is not None
    assert sh.pick("10.0.0.1", "d", skip={home}) == 1 - home
    assert sh.pick("10.0.0.1", "d", skip={0, 1}) is None
    # A quiesced backend's clients go elsewhere instead of nowhere (sh-fallback).
    weights = [1, 1]
    weights[home] = 0
    assert SourceHashing(weights).pick("10.0.0.1", "d") == 1 - home


def test_random_respects_weights_and_skips() -> None:
    random.seed(7)
    counts = Counter(picks("random", [3, 1, 0], 4000))
    assert set(counts) == {0, 1}
    assert 2.5 < counts[0] / counts[1] < 3.5
    rnd = new_scheduler("random", [1, 1])
    assert {rnd.pick("c", "d", skip={0}) for _ in range(10)} == {1}


@pytest.mark.parametrize("name", USERSPACE_SCHEDULERS)
def test_every_scheduler_handles_no_backends(name: str) -> None:
    assert new_scheduler(name, []).pick("10.0.0.1", "10.96.0.1") is None


def test_unknown_scheduler() -> None:
    with pytest.raises(ValueError, match="unknown scheduler 'fifo'"):
        new_scheduler("fifo", [1])
    assert choose_scheduler("", "rr", USERSPACE_SCHEDULERS) == "rr"
    assert choose_scheduler("lc", "rr", USERSPACE_SCHEDULERS) == "lc"
    assert choose_scheduler("lblc", "rr", USERSPACE_SCHEDULERS) == "rr"


@pytest.mark.parametrize(("annotations", "weight"), [
    (None, 1), ({}, 1), ({"kubesvc.io/weight": "5"}, 5), ({"kubesvc.io/weight": "0"}, 0),
    ({"kubesvc.io/weight": "heavy"}, 1), ({"kubesvc.io/weight": "70000"}, 1),
])
def test_pod_weight(annotations: dict[str, str] | None, weight: int) -> None:
    assert pod_weight(annotations) == weight
