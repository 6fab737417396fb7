import asyncio
from pathlib import Path

import pytest

from kubesvc.storage import Compacted, KeyExists, KeyNotFound, RevisionConflict
from kubesvc.storage import sqlite as sqlite_mod
from kubesvc.storage.sqlite import SQLiteStore


def obj(name: str, **extra: object) -> dict[str, object]:
    return {"kind": "ConfigMap", "metadata": {"name": name}, **extra}


async def test_crud_and_revisions(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    a = await store.create("/r/cm/ns/a", obj("a"))
    assert a["metadata"]["resourceVersion"] == "1"
    with pytest.raises(KeyExists):
        await store.create("/r/cm/ns/a", obj("a"))
    b = await store.update("/r/cm/ns/a", obj("a", data={"k": "v"}), expected_rev=1)
    assert b["metadata"]["resourceVersion"] == "2"
    with pytest.raises(RevisionConflict):
        await store.update("/r/cm/ns/a", obj("a"), expected_rev=1)
    await store.create("/r/cm/ns2/c", obj("c"))
    items, rev = await store.list("/r/cm/ns/")
    assert [i["metadata"]["name"] for i in items] == ["a"] and rev == 3
    gone = await store.delete("/r/cm/ns/a")
    assert gone["metadata"]["resourceVersion"] == "4" and gone["data"] == {"k": "v"}
    assert await store.get("/r/cm/ns/a") is None
    with pytest.raises(KeyNotFound):
        await store.delete("/r/cm/ns/a")
    await store.close()


async def test_watch_replays_history_then_follows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.create("/r/cm/ns/a", obj("a"))
    await store.create("/r/other/x", obj("x"))
    await store.update("/r/cm/ns/a", obj("a", data={}))
    watch = store.watch("/r/cm/", since=1)
    events = aiter(watch)
    first = await anext(events)
    assert (first.type, first.rev) == ("MODIFIED", 3)
    await store.delete("/r/cm/ns/a")
    second = await asyncio.wait_for(anext(events), 1)
    assert (second.type, second.rev) == ("DELETED", 4)
    watch.close()
    await store.close()


async def test_watch_resumes_after_reopen_and_compaction_gives_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "db")
    for i in range(5):
        await store.create(f"/r/cm/ns/{i}", obj(str(i)))
    await store.close()
    reopened = SQLiteStore(tmp_path / "db")
    assert reopened.revision == 5
    replay = [e.rev for e in reopened._history("/r/cm/", 2)]
    assert replay == [3, 4, 5]
    monkeypatch.setattr(sqlite_mod, "RETAINED_EVENTS", 2)
    reopened._compact(reopened.revision)
    with pytest.raises(Compacted):
        reopened.watch("/r/cm/", since=1)
    await reopened.close()
