"""kubectl asynctask follows tasks by watch from the versions it read: nothing written in between is missed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.kubectl.follow import TimedOut, follow
from asynctask_operator.kubectl.render import finished
from asynctask_operator.testing.fakekube import FakeKube

NS = "media"


async def task(fake: FakeKube, name: str) -> dict[str, Any]:
    return await fake.create(ASYNCTASKS, NS, {"metadata": {"name": name}, "spec": {"type": "t"}})


async def finish(fake: FakeKube, name: str) -> dict[str, Any]:
    return await fake.patch(ASYNCTASKS, NS, name, {"status": {"phase": "Succeeded"}}, subresource="status")


async def test_a_change_between_two_reads_is_not_missed() -> None:
    fake = FakeKube()
    a = await task(fake, "a")  # read first...
    await finish(fake, "a")  # ...then it finishes...
    b = await task(fake, "b")  # ...before the second is read
    await finish(fake, "b")
    seen: list[list[str]] = []
    final = await asyncio.wait_for(
        follow(fake, NS, [a, b], finished, lambda ts: seen.append([t["status"]["phase"] for t in ts if "status" in t])),
        5,
    )
    assert [t["status"]["phase"] for t in final] == ["Succeeded", "Succeeded"]
    assert not any(r.verb == "list" for r in fake.requests)  # watched from the versions read, no listing


async def test_a_relisting_after_410_takes_only_newer_copies() -> None:
    fake = FakeKube()
    a = await task(fake, "a")
    await finish(fake, "a")
    fake.compact()  # the version read is too old to watch from now: the reflector lists again
    final = await asyncio.wait_for(follow(fake, NS, [a], finished, lambda _: None), 5)
    assert final[0]["status"]["phase"] == "Succeeded"
    assert any(r.verb == "list" for r in fake.requests)


async def test_it_times_out_with_the_latest_copies() -> None:
    fake = FakeKube()
    a = await task(fake, "a")
    with pytest.raises(TimedOut) as late:
        await follow(fake, NS, [a], finished, lambda _: None, timeout=0.05)
    assert [t["metadata"]["name"] for t in late.value.tasks] == ["a"]
