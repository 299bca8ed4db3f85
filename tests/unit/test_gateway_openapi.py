"""The gateway's OpenAPI: the committed document is what the code serves, and the code keeps to it.

Regenerate the committed file with::

    .venv/bin/python -m asynctask_operator.gateway.openapi --write docs/gateway-openapi.json

schemathesis draws requests from the document against the app in process (a FakeKube behind it,
every act allowed for the token it sends): no answer is a 5xx, and each conforms to the
document (status code, content type, body schema). The event streams are left out (they stay
open by design; tests/unit/test_gateway_tasks.py covers them).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway import openapi
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.gateway import NS, TOKENS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_committed_document_is_what_the_gateway_serves() -> None:
    committed = json.loads((ROOT / openapi.DOCUMENT).read_text())
    assert committed == openapi.document(), (
        f"{openapi.DOCUMENT} is stale: run `.venv/bin/python -m asynctask_operator.gateway.openapi "
        f"--write {openapi.DOCUMENT}`"
    )
    assert committed["openapi"].startswith("3.1")


def meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z"}


def gateway_app() -> Any:
    fake = FakeKube()
    fake.reviews(TOKENS)  # every act allowed
    gateway = Gateway.build(fake, GatewaySettings(rate_limit=0.0, auth_failure_limit=0.0), Clocks())
    for store in gateway.stores:
        store.synced.set()
    for name, phase in (("t1", "Succeeded"), ("t2", "Failed")):
        task = {"metadata": meta(name), "spec": {"type": "echo"}, "status": {"phase": phase}}
        fake.objects[ASYNCTASKS, NS, name] = task
        gateway.tasks.put(task)
    queue = {"metadata": meta("q1"), "spec": {"concurrency": 2}}
    fake.objects[TASKQUEUES, NS, "q1"] = queue
    gateway.queues.put(queue)
    scheduled = {"metadata": meta("s1"), "spec": {"schedule": "@daily", "taskTemplate": {"spec": {"type": "echo"}}}}
    fake.objects[SCHEDULEDTASKS, NS, "s1"] = scheduled
    gateway.schedules.put(scheduled)
    return create_app(gateway, follow_api=False)


schema = schemathesis.openapi.from_asgi("/openapi.json", gateway_app()).exclude(path_regex=r"/events$")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_answer_is_a_5xx_and_every_answer_conforms(case: schemathesis.Case[Any]) -> None:
    # positive_data_acceptance is left out: a label selector or a continue token is a string the
    # schema cannot constrain further, and refusing a malformed one (400) is right
    case.call_and_validate(headers={"Authorization": "Bearer alice-token"}, excluded_checks=[positive_data_acceptance])
