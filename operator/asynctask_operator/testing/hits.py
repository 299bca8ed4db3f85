"""The emulator's light log of requests: one :class:`Hit` per request, counted by the tests and the
benchmarks (O(1) each, where kmock's own history is scanned), and who sent it, by its User-Agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

# The operator process sends its own requests as "asynctask-operator" (kopf's, if any, as "kopf/...");
# the test's own hands, through kmock's client, as "kmock/...".
OPERATOR_AGENTS = ("asynctask-operator", "kopf/")
TEST_AGENT = "kmock/"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})


@attrs.define
class Hit:
    """One request the emulator answered, as its users count it."""

    t: float  # time.monotonic() when it was received
    operator: bool  # sent by the operator process
    kopf: bool  # sent by kopf's client
    method: str
    verb: str  # get, list, watch, create, update, patch, delete
    resource: str  # plural, plus "/status" for the subresource
    namespace: str | None
    name: str | None  # from the path, or from the body of a create (an Event's: the object it is about)
    selector: str  # labelSelector, if any
    status: int | None = None  # the answer's code; None while a watch streams
    agent: str = ""  # the User-Agent (the archiver's requests are counted apart: bench.api_budget --archive)
    sent: int = 0  # bytes of the request's body
    received: int = 0  # bytes of the answer's body; of a watch: of every event it streamed so far
    events: int = 0  # of a watch: the events it streamed so far

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def subject(self) -> str:
        """The name the request is about: the object's, or the Job name a pod listing selects."""
        if self.name:
            return self.name
        for part in self.selector.split(","):
            key, _, value = part.partition("=")
            if key.strip() in ("batch.kubernetes.io/job-name", "job-name"):
                return value.strip()
        return ""


Listener = Callable[[Hit, Any], None]
WatchListener = Callable[[Hit, Any, int], None]  # a watch's Hit, one event it sent, its bytes on the wire


def from_operator(request: Any) -> bool:
    return str(request.headers.get("User-Agent", "")).startswith(OPERATOR_AGENTS)


def from_the_test(request: Any) -> bool:
    """Sent by the test's own hands (kmock's client): the cluster's other actors, and its past (a create
    then keeps the uid, times and status its body carries: an object as it was before the test began)."""
    return str(request.headers.get("User-Agent", "")).startswith(TEST_AGENT)


def _verb(method: str, name: str | None, params: dict[str, str]) -> str:
    if method == "GET":
        if name:
            return "get"
        return "watch" if params.get("watch", "").lower() in ("1", "true") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


def hit_of(request: Any) -> Hit | None:
    """The Hit of kmock's ``request``, None for one about no resource (discovery, /version)."""
    if request.resource is None or not request.resource.plural:
        return None
    agent = str(request.headers.get("User-Agent", ""))
    method = str(request.method.value).upper()
    name = request.name
    if method == "POST" and not name and isinstance(request.data, dict):
        name = (request.data.get("metadata") or {}).get("name")
        if request.resource.plural == "events":  # an Event counts for the object it is about
            name = (request.data.get("involvedObject") or {}).get("name") or name
    params = dict(request.params or {})
    return Hit(
        t=time.monotonic(),
        operator=agent.startswith(OPERATOR_AGENTS),
        kopf=agent.startswith("kopf/"),
        method=method,
        verb=_verb(method, name if method != "POST" else None, params),
        resource=request.resource.plural + (f"/{request.subresource}" if request.subresource else ""),
        namespace=request.namespace,
        name=name,
        selector=params.get("labelSelector", ""),
        agent=agent,
        sent=len(request.body or b""),
    )
