"""RBAC rules with ``resourceNames`` hold through the gateway and its console as they do through kubectl.

``kubectl get asynctask mine`` asks the API server about ``mine`` by name, so a Role that grants
``get`` and ``patch`` on ``resourceNames: [mine]`` lets its user read and cancel that task, and
nothing else. The fake's SubjectAccessReviews answer as RBAC does (:mod:`tests.support.rbac`):
a rule with names matches only requests naming one of them; a rule without names matches all.
"""

from __future__ import annotations

import html

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.gateway.auth import DENIED_TTL
from tests.support.gateway import NS, RunningGateway, running_gateway
from tests.support.rbac import Rule, grant

T = f"/v1/namespaces/{NS}/tasks"
NAMED = [Rule("bob", ("get", "patch", "watch"), "asynctasks", NS, names=("mine",))]
UNNAMED = [Rule("bob", ("get", "patch", "watch"), "asynctasks", NS)]
ANOTHER = [Rule("bob", ("get", "patch", "watch"), "asynctasks", NS, names=("theirs",))]
OTHER_NAMESPACE = [Rule("bob", ("get", "patch", "watch"), "asynctasks", "elsewhere", names=("mine",))]


async def with_tasks(gw: RunningGateway, rules: list[Rule]) -> None:
    for name in ("mine", "other"):
        await gw.fake.create(ASYNCTASKS, NS, {"metadata": {"name": name, "namespace": NS}, "spec": {"type": "echo"}})
    await gw.settle()
    gw.rules.extend(rules)


CASES = [
    # (rules, method, path, expected status)
    (NAMED, "GET", f"{T}/mine", 200),
    (NAMED, "GET", f"{T}/mine/result", 409),  # allowed; the task has no result yet
    (NAMED, "POST", f"{T}/mine:cancel", 202),
    (NAMED, "GET", f"{T}/other", 403),
    (NAMED, "POST", f"{T}/other:cancel", 403),
    (NAMED, "GET", T, 403),  # a listing asks namespace-wide: a rule with names does not cover it
    (UNNAMED, "GET", f"{T}/mine", 200),
    (UNNAMED, "GET", f"{T}/other", 200),
    (UNNAMED, "POST", f"{T}/other:cancel", 202),
    (ANOTHER, "GET", f"{T}/mine", 403),
    (ANOTHER, "POST", f"{T}/mine:cancel", 403),
    (OTHER_NAMESPACE, "GET", f"{T}/mine", 403),
]


@pytest.mark.parametrize(("rules", "method", "path", "status"), CASES)
async def test_a_route_about_one_task_asks_about_it_by_name(
    rules: list[Rule], method: str, path: str, status: int
) -> None:
    async with running_gateway() as gw:
        await with_tasks(gw, rules)
        answer = await gw.client.request(method, path, headers=gw.bob)
        assert answer.status_code == status, answer.text
        if status == 403:
            assert answer.json()["permission"]["name"] == ("" if path == T else path.split("/")[-1].split(":")[0])


async def test_the_review_cache_tells_one_name_from_another() -> None:
    async with running_gateway() as gw:
        await with_tasks(gw, NAMED)
        assert (await gw.client.get(f"{T}/mine", headers=gw.bob)).status_code == 200
        assert (await gw.client.get(f"{T}/other", headers=gw.bob)).status_code == 403  # not mine's cached answer
        gw.rules.append(grant("bob", "get", "asynctasks", NS, "other"))
        gw.now[0] += DENIED_TTL + 0.1
        assert (await gw.client.get(f"{T}/other", headers=gw.bob)).status_code == 200


async def test_the_console_shows_and_acts_on_the_named_task_only() -> None:
    async with running_gateway() as gw:
        await with_tasks(gw, NAMED)
        gw.rules.append(grant("bob", "list", "asynctasks", NS))
        gw.rules.append(grant("bob", "list", "events", NS))
        client = gw.client
        signed = await client.post(
            "/ui/login", content="token=bob-token", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert signed.status_code == 303
        page = await client.get(f"/ui/namespaces/{NS}/tasks/mine")
        assert page.status_code == 200 and "/tasks/mine/cancel" in page.text
        refused = await client.get(f"/ui/namespaces/{NS}/tasks/other")
        assert refused.status_code == 403 and "you may not get asynctasks 'other'" in html.unescape(refused.text)
        table = await client.get("/ui/", params={"namespace": NS})
        assert table.status_code == 200
        assert (
            f'value="{NS}/mine"' in table.text and f'value="{NS}/other"' not in table.text
        )  # a box per task it may patch
