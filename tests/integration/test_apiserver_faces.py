"""One fake API server, two faces: what is written in process is read over HTTP with the operator's own
client, and the other way round; over HTTP the model's semantics hold (paging, 409s, watches from a
resourceVersion, 410, label selectors), while kmock's reactions and request history still work."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import kmock
import pytest

from asynctask_operator.adapters.aiokube import AioKubeClient
from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, ApiError, Conflict, Gone, NotFound
from asynctask_operator.adapters.kubeclient import KubeClient, RetryPolicy
from asynctask_operator.adapters.kubeconfig import load_configuration
from asynctask_operator.testing.cluster import AT, NS, Cluster
from asynctask_operator.testing.emulator import ApiServerEmulator
from asynctask_operator.testing.fakekube import FakeKube


def task(name: str, **labels: str) -> dict[str, object]:
    return {"kind": "AsyncTask", "metadata": {"name": name, "labels": labels}, "spec": {"type": "echo"}}


@pytest.fixture(params=["threads", "aiohttp"])
async def client(
    request: pytest.FixtureRequest, kubeconfig: pathlib.Path, cluster: Cluster
) -> AsyncIterator[KubeClient]:
    """Both clients: the official one in threads (the gateway's, the plugin's) and aiohttp (the operator's)."""
    kind = AioKubeClient if request.param == "aiohttp" else KubeClient
    api = kind(load_configuration(str(kubeconfig)), retry=RetryPolicy(attempts=1))
    yield api
    if isinstance(api, AioKubeClient):
        await api.aclose()
    else:
        api.close()


async def test_what_one_face_writes_the_other_reads(kmock: ApiServerEmulator, client: KubeClient) -> None:
    fake = FakeKube(model=kmock.model)
    await fake.create(ASYNCTASKS, NS, task("inside"))
    over_http = await client.create(ASYNCTASKS, NS, task("outside"))
    assert (await client.get(ASYNCTASKS, NS, "inside"))["metadata"]["resourceVersion"] == "1"
    assert (await fake.get(ASYNCTASKS, NS, "outside")) == over_http
    assert over_http["metadata"]["resourceVersion"] == "2"
    assert kmock.objects[AT, NS, "inside"]["spec"] == {"type": "echo"}  # kmock's store mirrors the model's


async def test_a_listing_over_http_comes_in_pages_with_the_listing_version(
    kmock: ApiServerEmulator, client: KubeClient
) -> None:
    for i in range(5):
        kmock.model.create(ASYNCTASKS, NS, task(f"t{i}", team="x" if i % 2 else "y"))
    pages = [(len(page), version) async for page, version in client.list_pages(ASYNCTASKS, NS, limit=2)]
    assert pages == [(2, "5"), (2, "5"), (1, "5")]
    odd = await client.list_objects(ASYNCTASKS, NS, "team=x")
    assert [o["metadata"]["name"] for o in odd] == ["t1", "t3"]
    listings = [h for h in kmock.hits if h.verb == "list"]
    assert len(listings) == 4 and all(h.status == 200 for h in listings)


async def test_the_model_refuses_over_http_as_an_api_server_does(kmock: ApiServerEmulator, client: KubeClient) -> None:
    first = await client.create(ASYNCTASKS, NS, task("a"))
    with pytest.raises(Conflict):
        await client.create(ASYNCTASKS, NS, task("a"))
    await client.patch(ASYNCTASKS, NS, "a", {"spec": {"priority": 1}})
    stale = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "spec": {"priority": 2}}
    with pytest.raises(Conflict):
        await client.patch(ASYNCTASKS, NS, "a", stale)
    assert kmock.conflicts == 1  # the operator's client, refused for a stale resourceVersion
    status = await client.patch(ASYNCTASKS, NS, "a", {"status": {"phase": "Running"}})
    assert "status" not in status  # not through the status subresource
    with pytest.raises(NotFound):
        await client.get(ASYNCTASKS, NS, "nobody")
    kmock.model.fail("get", "asynctasks", ApiError(503, "ServiceUnavailable", "busy"))
    with pytest.raises(ApiError) as busy:
        await client.get(ASYNCTASKS, NS, "a")
    assert busy.value.status == 503


async def test_a_reaction_answers_after_the_model_stored_the_write(
    kmock: ApiServerEmulator, client: KubeClient
) -> None:
    kmock["post", f"/apis/batch/v1/namespaces/{NS}/jobs"][:1] << 500
    with pytest.raises(ApiError) as failed:
        await client.create(JOBS, NS, {"metadata": {"name": "j-1"}})
    assert failed.value.status == 500
    assert kmock.model.get(JOBS, NS, "j-1")["metadata"]["name"] == "j-1"  # committed: "timed out after commit"
    with pytest.raises(Conflict):
        await client.create(JOBS, NS, {"metadata": {"name": "j-1"}})
    assert [r.method for r in kmock if r.url.path.endswith("/jobs")] == [kmock.method.POST] * 2


async def test_a_watch_over_http_resumes_from_a_version_and_is_gone_after_a_compaction(
    kmock: ApiServerEmulator, client: KubeClient
) -> None:
    kmock.model.create(ASYNCTASKS, NS, task("a"))
    since = str(kmock.model.version)
    kmock.model.create(ASYNCTASKS, NS, task("b"))
    kmock.model.delete(ASYNCTASKS, NS, "a")
    seen: list[tuple[str, str]] = []

    async def follow() -> None:
        async for event in client.watch(ASYNCTASKS, NS, None, since, timeout_seconds=30):
            seen.append((event["type"], event["object"]["metadata"].get("name", "")))

    reader = asyncio.create_task(follow())
    async with asyncio.timeout(10):
        while len(seen) < 2:  # noqa: ASYNC110 (the stream has no hook for it)
            await asyncio.sleep(0.01)
        await kmock.bookmark_all()
        while len(seen) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    kmock.model.end_watches()
    await asyncio.wait_for(reader, 10)
    assert seen == [("ADDED", "b"), ("DELETED", "a"), ("BOOKMARK", "")]
    kmock.model.compact()
    with pytest.raises(Gone):
        async for _ in client.watch(ASYNCTASKS, NS, None, since):
            pass


@pytest.mark.parametrize("agent", ["kmock", "operator"])
async def test_only_the_tests_own_create_restores_an_object_as_it_was(
    kmock: ApiServerEmulator, client: KubeClient, agent: str
) -> None:
    body = task("old") | {"status": {"phase": "Running"}}
    body["metadata"] |= {"uid": "uid-old"}  # type: ignore[operator]
    if agent == "kmock":
        answer = await kmock.post(f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks", json=body)
        created = await answer.json()
    else:
        created = await client.create(ASYNCTASKS, NS, body)
    restored = agent == "kmock"
    assert (created["metadata"]["uid"] == "uid-old", created.get("status")) == (
        restored,
        {"phase": "Running"} if restored else None,
    )


def test_the_emulator_is_the_integration_tiers(kmock: kmock.KubernetesEmulator) -> None:
    assert isinstance(kmock, ApiServerEmulator)
