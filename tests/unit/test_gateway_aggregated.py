"""The aggregated API archive.asynctask.dev/v1alpha1 (issue 27, item 4, the plugin's side): discovery, the
ArchivedTask list and object, the Table kubectl prints, metav1.Status errors, and authorization by a
SubjectAccessReview for the user the front proxy names, exactly as the live reads'. In process (what the
TLS handshake refuses is tests/integration/test_aggregated_tls.py), against a real SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.capture import log_row
from asynctask_operator.gateway.auth import DENIED_TTL
from asynctask_operator.gateway.frontproxy import FrontProxy
from tests.support.frontproxy import BASE, FrontProxyClient, front_proxy, identity
from tests.support.gateway import NS, RunningGateway, running_gateway
from tests.support.rbac import Rule, grant
from tests.unit.test_gateway_history import T0, archive, finished, stamp, tail

TASKS = f"{BASE}/namespaces/{NS}/archivedtasks"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
WHY = "(archived tasks are read with the rights of live ones)"


@pytest.fixture()
async def gw(archive_dsn: str, archive_engine: AsyncEngine) -> AsyncIterator[RunningGateway]:
    async with running_gateway(archive_dsn=archive_dsn) as running:
        yield running


@pytest.fixture()
async def proxy(gw: RunningGateway) -> AsyncIterator[FrontProxyClient]:
    async with front_proxy(gw) as client:
        yield client


def recording(gw: RunningGateway) -> list[dict[str, Any]]:
    """The spec of every SubjectAccessReview the gateway asks from now on (user, groups, extra, attributes)."""
    asked: list[dict[str, Any]] = []
    reviewer = gw.fake.model.reviewer
    answer = reviewer.answer

    def recorded(resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        if resource.plural == "subjectaccessreviews":
            asked.append(copy.deepcopy(body["spec"]))
        return answer(resource, body)

    reviewer.answer = recorded  # type: ignore[method-assign]
    return asked


def status_of(answer: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert answer.status_code == code, answer.text
    body: dict[str, Any] = answer.json()
    assert (body["kind"], body["apiVersion"], body["status"], body["code"], body["reason"]) == (
        "Status", "v1", "Failure", code, reason
    ), body  # fmt: skip
    return body


def elsewhere(name: str, uid: str, namespace: str) -> dict[str, Any]:
    obj = finished(name, uid, T0 + 50)
    obj["metadata"]["namespace"] = namespace
    return obj


# --------------------------------------------------------------------------- discovery


async def test_discovery_names_the_group_its_version_and_its_two_resources(proxy: FrontProxyClient) -> None:
    groups = (await proxy.get("/apis")).json()
    assert (groups["kind"], groups["apiVersion"]) == ("APIGroupList", "v1")
    [group] = groups["groups"]
    version = {"groupVersion": "archive.asynctask.dev/v1alpha1", "version": "v1alpha1"}
    assert group == {"name": "archive.asynctask.dev", "versions": [version], "preferredVersion": version}
    one = (await proxy.get("/apis/archive.asynctask.dev")).json()
    assert (one["kind"], one["apiVersion"], one["preferredVersion"]) == ("APIGroup", "v1", version)
    resources = (await proxy.get(BASE)).json()
    assert (resources["kind"], resources["groupVersion"]) == ("APIResourceList", "archive.asynctask.dev/v1alpha1")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert set(by_name) == {"archivedtasks", "archivedtasks/log"}
    assert (by_name["archivedtasks"]["kind"], by_name["archivedtasks"]["verbs"]) == ("ArchivedTask", ["get", "list"])
    assert by_name["archivedtasks"]["namespaced"] is True and by_name["archivedtasks/log"]["verbs"] == ["get"]
    health = await proxy.get("/healthz")
    assert (health.status_code, health.text) == (200, "ok")


# --------------------------------------------------------------------------- OpenAPI: kubectl explain

OPENAPI = "/openapi/v3/apis/archive.asynctask.dev/v1alpha1"
SCHEMAS = "dev.asynctask.archive.v1alpha1"


def undeclared(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """The fields of ``value`` its schema does not name (``kubectl explain`` would know nothing of them)."""
    if isinstance(value, dict) and "properties" in schema:
        out = []
        for key, item in value.items():
            if key in schema["properties"]:
                out += undeclared(item, schema["properties"][key], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
                out.append(f"{path}.{key}")
        return out
    if isinstance(value, list) and "items" in schema:
        return [miss for item in value for miss in undeclared(item, schema["items"], f"{path}[]")]
    return []


async def test_the_openapi_document_describes_every_field_of_what_is_served(
    proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    """What the API server aggregates from ``/openapi/v3`` is what ``kubectl explain archivedtasks`` reads:
    found by its group-version-kind, and every field of a real ArchivedTask, its list and its summary in it."""
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\n"))]
    await archive(archive_engine, [finished("old", "u-1", T0, app="web")], logs)
    paths = (await proxy.get("/openapi/v3")).json()["paths"]
    assert list(paths) == ["apis/archive.asynctask.dev/v1alpha1"]
    url = paths["apis/archive.asynctask.dev/v1alpha1"]["serverRelativeURL"]
    assert url.startswith(f"{OPENAPI}?hash=")
    answer = await proxy.get(url)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "public, immutable"
    assert url.endswith(answer.headers["etag"].strip('"'))  # the hash the API server compares is the document's
    assert (await proxy.get(url, headers={"If-None-Match": answer.headers["etag"]})).status_code == 304
    document = answer.json()
    assert document["openapi"].startswith("3.0")
    schemas = document["components"]["schemas"]
    by_kind = {s["x-kubernetes-group-version-kind"][0]["kind"]: s for s in schemas.values()}
    assert set(by_kind) == {"ArchivedTask", "ArchivedTaskList"}
    task_schema = by_kind["ArchivedTask"]
    assert {"spec", "status", "archive", "summary"} <= set(task_schema["properties"])
    assert "description" in task_schema["properties"]["spec"]["properties"]["payload"]  # the CRD's own words
    served = (await proxy.get(f"{TASKS}/old")).json()
    listed = (await proxy.get(TASKS)).json()
    jsonschema.Draft4Validator(task_schema).validate(served)
    assert undeclared(served, task_schema) == []
    list_schema = by_kind["ArchivedTaskList"]
    assert list_schema["properties"]["items"]["items"] == {"$ref": f"#/components/schemas/{SCHEMAS}.ArchivedTask"}
    inline = {
        **list_schema,
        "properties": {**list_schema["properties"], "items": {"type": "array", "items": task_schema}},
    }
    jsonschema.Draft4Validator(inline).validate(listed)
    assert undeclared(listed, inline) == []
    assert undeclared({"spec": {"noSuchField": 1}}, task_schema) == [".spec.noSuchField"]  # the check can fail


# --------------------------------------------------------------------------- who is asking


async def test_without_the_front_proxys_certificate_or_a_user_nothing_is_served_nor_reviewed(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    asked = recording(gw)
    for common_name, words in ((None, "no verified client certificate"), ("someone-else", "someone-else")):
        async with front_proxy(gw, common_name=common_name) as stranger:
            for path in ("/apis", BASE, "/openapi/v3", OPENAPI, TASKS, f"{TASKS}/old", f"{TASKS}/old/log"):
                body = status_of(await stranger.get(path), 401, "Unauthorized")
                assert words in body["message"], body
    async with front_proxy(gw) as proxy:
        body = status_of(await proxy.get(TASKS, user=None), 401, "Unauthorized")
        assert "X-Remote-User" in body["message"]
    assert asked == []


async def test_with_no_allowed_names_any_certificate_of_the_ca_may_name_the_user(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    async with front_proxy(gw, common_name="any-name", proxy=FrontProxy("PEM")) as proxy:
        assert (await proxy.get(f"{TASKS}/old")).status_code == 200


async def test_the_main_port_never_believes_the_front_proxys_headers(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    asked = recording(gw)
    claimed = identity("alice", ("system:masters",))
    for path in (
        f"/v1/namespaces/{NS}/history",
        f"/v1/namespaces/{NS}/tasks/old",
        f"/v1/namespaces/{NS}/tasks/old/log",
    ):
        answer = await gw.client.get(path, headers=claimed)
        assert answer.status_code == 401, (path, answer.text)  # a bearer token, or nothing
    assert (await gw.client.get(TASKS, headers=claimed)).status_code == 404  # not served on the main port at all
    assert asked == []


async def test_every_read_is_reviewed_for_the_user_groups_and_extra_the_front_proxy_names(
    gw: RunningGateway, proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    asked = recording(gw)
    who = {"user": "alice", "groups": ("team-media", "system:authenticated"), "extra": {"scopes": ["a", "b"]}}
    assert (await proxy.get(f"{TASKS}/old", **who)).status_code == 200  # type: ignore[arg-type]
    assert (await proxy.get(TASKS, **who)).status_code == 200  # type: ignore[arg-type]
    assert [(s["user"], s["groups"], s["extra"]) for s in asked] == [
        ("alice", ["team-media", "system:authenticated"], {"scopes": ["a", "b"]})
    ] * 2
    assert [s["resourceAttributes"] for s in asked] == [
        {"group": "asynctask.dev", "resource": "asynctasks", "verb": "get", "namespace": NS, "name": "old"},
        {"group": "asynctask.dev", "resource": "asynctasks", "verb": "list", "namespace": NS},
    ]


async def test_a_user_who_may_not_read_live_tasks_reads_no_archived_ones(
    gw: RunningGateway, proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0), elsewhere("far", "u-9", "other")])
    body = status_of(await proxy.get(TASKS, user="bob"), 403, "Forbidden")
    assert body["message"] == f"User 'bob' may not list asynctasks in namespace '{NS}' {WHY}"
    body = status_of(await proxy.get(f"{TASKS}/old", user="bob"), 403, "Forbidden")
    assert body["message"] == f"User 'bob' may not get asynctasks 'old' in namespace '{NS}' {WHY}"
    assert body["details"] == {"group": "archive.asynctask.dev", "kind": "archivedtasks", "name": "old"}
    gw.rules.append(grant("bob", "get", "asynctasks", NS, "old"))
    gw.now[0] += DENIED_TTL + 0.1
    assert (await proxy.get(f"{TASKS}/old", user="bob")).status_code == 200  # by name, as kubectl get asks
    assert (await proxy.get(TASKS, user="bob")).status_code == 403  # a listing is namespace-wide
    across = status_of(await proxy.get(f"{BASE}/archivedtasks"), 403, "Forbidden")
    assert across["message"] == f"User 'alice' may not list asynctasks across all namespaces {WHY}"
    gw.rules.append(Rule("alice", ("list",), "asynctasks", ""))  # cluster-wide, as a ClusterRoleBinding grants
    gw.now[0] += DENIED_TTL + 0.1
    listed = (await proxy.get(f"{BASE}/archivedtasks")).json()
    assert [(t["metadata"]["namespace"], t["metadata"]["name"]) for t in listed["items"]] == [
        ("other", "far"),
        (NS, "old"),
    ]


# --------------------------------------------------------------------------- what is answered


async def test_an_archived_task_is_the_task_as_kept_with_the_gateways_own_figures(
    gw: RunningGateway, proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\nframe 2\n"))]
    await archive(archive_engine, [finished("old", "u-1", T0, app="web")], logs)
    obj = (await proxy.get(f"{TASKS}/old")).json()
    assert (obj["apiVersion"], obj["kind"]) == ("archive.asynctask.dev/v1alpha1", "ArchivedTask")
    assert obj["metadata"] == {
        "name": "old", "namespace": NS, "uid": "u-1", "creationTimestamp": stamp(T0), "labels": {"app": "web"}
    }  # fmt: skip
    assert obj["spec"] == {"type": "video", "queue": "gpu"} and obj["status"]["result"] == {"url": "s3://out/old"}
    assert obj["archive"] == {
        "archivedTime": stamp(T0 + 1000),
        "logs": [{"attempt": 1, "pod": "old-1-x", "container": "main", "bytes": 16, "truncated": False}],
    }
    on_the_gateway = (await gw.client.get(f"/v1/namespaces/{NS}/tasks/old", headers=gw.alice)).json()
    assert obj["summary"] == on_the_gateway  # every figure, as the gateway's own answer gives it
    assert (obj["summary"]["percent"], obj["summary"]["durationSeconds"], obj["summary"]["archived"]) == (
        100.0,
        20.0,
        True,
    )
    [listed] = (await proxy.get(TASKS)).json()["items"]
    assert listed["summary"] == on_the_gateway and "logs" not in listed["archive"]


async def test_by_name_the_newest_by_uid_exactly_and_404_in_the_api_servers_words(
    proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("again", "u-old", T0), finished("again", "u-new", T0 + 60, "Failed")])
    assert (await proxy.get(f"{TASKS}/again")).json()["metadata"]["uid"] == "u-new"
    older = (await proxy.get(f"{TASKS}/again", params={"uid": "u-old"})).json()
    assert (older["metadata"]["uid"], older["status"]["phase"]) == ("u-old", "Succeeded")
    missing = status_of(await proxy.get(f"{TASKS}/never"), 404, "NotFound")
    assert missing["message"] == 'archivedtasks.archive.asynctask.dev "never" not found'
    assert missing["details"]["name"] == "never"
    status_of(await proxy.get(f"{TASKS}/other", params={"uid": "u-old"}), 404, "NotFound")  # a uid under its name only


async def test_the_list_pages_by_keyset_in_metadata_continue_and_filters(
    proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    objs = [finished(f"t{i:02d}", f"u-{i:02d}", T0 + i, "Failed" if i % 3 == 0 else "Succeeded", tier="a" if i % 2 else "b")
            for i in range(7)]  # fmt: skip
    await archive(archive_engine, objs)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = (await proxy.get(TASKS, params=params)).json()
        assert (page["kind"], page["apiVersion"]) == ("ArchivedTaskList", "archive.asynctask.dev/v1alpha1")
        seen += [t["metadata"]["name"] for t in page["items"]]
        if "continue" not in page["metadata"]:
            break
        params = {"limit": 3, "continue": page["metadata"]["continue"]}
    assert seen == [f"t{i:02d}" for i in reversed(range(7))]  # newest first, each once
    failed_a = (await proxy.get(TASKS, params={"phase": "Failed", "labelSelector": "tier=a"})).json()
    assert [t["metadata"]["name"] for t in failed_a["items"]] == ["t03"]
    window = {"since": stamp(T0 + 2), "until": stamp(T0 + 4), "q": "t0"}
    assert [t["metadata"]["name"] for t in (await proxy.get(TASKS, params=window)).json()["items"]] == [
        "t04",
        "t03",
        "t02",
    ]


async def test_kubectl_get_is_answered_a_table(
    gw: RunningGateway, proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    answer = await proxy.get(TASKS, accept=TABLE)
    assert answer.headers["content-type"].startswith("application/json;as=Table;v=v1;g=meta.k8s.io")
    table = answer.json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Type", "Queue", "Phase", "Reason", "Attempts", "Duration", "Age", "Archived"
    ]  # fmt: skip
    [row] = table["rows"]
    assert row["cells"] == ["old", "video", "gpu", "Succeeded", "Completed", 1, "20s", "11d", "11d"]  # 1,000,000 s ago
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == "old"
    one = (await proxy.get(f"{TASKS}/old", accept=TABLE)).json()
    assert one["kind"] == "Table" and one["rows"][0]["cells"][0] == "old"
    bare = (await proxy.get(TASKS, accept=TABLE, params={"includeObject": "None"})).json()
    assert "object" not in bare["rows"][0]


async def test_an_attempts_log_needs_get_pods_log_on_its_pod_as_kubectl_logs_does(
    gw: RunningGateway, proxy: FrontProxyClient, archive_engine: AsyncEngine
) -> None:
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\n\xff\n"))]
    await archive(archive_engine, [finished("old", "u-1", T0)], logs)
    body = status_of(await proxy.get(f"{TASKS}/old/log"), 403, "Forbidden")
    assert body["message"] == f"User 'alice' may not get pods/log 'old-1-x' in namespace '{NS}' {WHY}"
    gw.rules.append(grant("alice", "get", "pods/log", NS, "old-1-x"))
    gw.now[0] += DENIED_TTL + 0.1
    answer = await proxy.get(f"{TASKS}/old/log")
    assert (answer.status_code, answer.text) == (200, "frame 1\n\ufffd\n")
    assert answer.headers["X-Log-Source"] == "archive" and answer.headers["content-type"].startswith("text/plain")
    status_of(await proxy.get(f"{TASKS}/old/log", params={"attempt": 2}), 404, "NotFound")
    status_of(await proxy.get(f"{TASKS}/gone/log"), 404, "NotFound")


@pytest.mark.parametrize(
    ("params", "code", "reason", "words"),
    [
        ({"labelSelector": "a in (b"}, 400, "BadRequest", "selector"),
        ({"continue": "not-a-cursor"}, 400, "BadRequest", "cursor"),
        ({"since": "yesterday"}, 400, "BadRequest", "since must be an RFC 3339 time"),
        ({"limit": "0"}, 400, "BadRequest", "limit"),
        ({"fieldSelector": "metadata.name=x"}, 400, "BadRequest", "fieldSelector is not supported"),
        ({"watch": "true"}, 405, "MethodNotAllowed", "cannot be watched"),
    ],
)
async def test_bad_requests_are_statuses_that_name_what_is_wrong(
    proxy: FrontProxyClient, params: dict[str, str], code: int, reason: str, words: str
) -> None:
    body = status_of(await proxy.get(TASKS, params=params), code, reason)
    assert words in body["message"], body


async def test_a_path_it_does_not_serve_is_a_404_status(proxy: FrontProxyClient) -> None:
    body = status_of(await proxy.get(f"{BASE}/namespaces/{NS}/somethingelse"), 404, "NotFound")
    assert body["message"] == "the server could not find the requested resource"


async def test_a_database_that_does_not_answer_is_503_service_unavailable() -> None:
    async with running_gateway(archive_dsn="postgresql://nobody@127.0.0.1:1/none") as gw, front_proxy(gw) as proxy:
        for path in (TASKS, f"{TASKS}/old", f"{TASKS}/old/log"):
            answer = await proxy.get(path)
            body = status_of(answer, 503, "ServiceUnavailable")
            assert "archive is unavailable" in body["message"] and body["details"]["retryAfterSeconds"] == 5
            assert answer.headers["Retry-After"] == "5"
        assert (await proxy.get(BASE)).status_code == 200  # discovery needs no database
