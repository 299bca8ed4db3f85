"""A bad manifest is refused by the API server, with a message that names the field (docs/design.md §2).

These exercise the generated CRD schema (bounds, required fields, CEL transition rules)
in a real API server: nothing here depends on the operator.
"""

from __future__ import annotations

import pytest
from kubernetes.client import ApiException

from tests.e2e.helpers import (
    API_VERSION,
    Cluster,
    Obj,
    api_message,
    task_body,
    to_yaml,
)

pytestmark = pytest.mark.e2e


def refusal(cluster: Cluster, body: Obj) -> str:
    """Create ``body``, expect a 422 from the API server, and return its message."""
    name = body["metadata"]["name"]
    with pytest.raises(ApiException) as caught:
        cluster.create(body)
    exc = caught.value
    message = api_message(exc)
    assert exc.status == 422, f"expected 422 Unprocessable Entity, got {exc.status}: {message}\n{to_yaml(body)}"
    assert cluster.get_task(name) is None, f"AsyncTask {name} was stored although the API server refused it"
    return message


@pytest.mark.parametrize(
    ("name", "spec", "field", "words"),
    [
        pytest.param("no-type", {"payload": {"a": 1}}, "spec.type", "Required value", id="missing-type"),
        pytest.param(
            "too-important",
            {"type": "hello", "priority": 5000},
            "spec.priority",
            "less than or equal to 1000",
            id="priority-over-1000",
        ),
        pytest.param(
            "negative-timeout",
            {"type": "hello", "timeoutSeconds": -1},
            "spec.timeoutSeconds",
            "greater than or equal to 1",
            id="timeout-below-1",
        ),
    ],
)
def test_bad_asynctask_is_refused_naming_the_field(
    cluster: Cluster, name: str, spec: Obj, field: str, words: str
) -> None:
    message = refusal(cluster, task_body(name, spec))
    assert field in message, f"the refusal does not name {field}: {message}"
    assert words in message, f"the refusal does not say {words!r}: {message}"


def test_spec_type_is_immutable(cluster: Cluster) -> None:
    # The TaskType need not exist for this: the API server checks the transition rule on any update.
    cluster.create(task_body("immutable-type", {"type": "placeholder-type", "payload": {"n": 1}}))
    with pytest.raises(ApiException) as caught:
        cluster.patch_task("immutable-type", {"spec": {"type": "other-type"}})
    exc = caught.value
    message = api_message(exc)
    assert exc.status == 422, f"expected 422 Unprocessable Entity, got {exc.status}: {message}"
    assert "spec.type is immutable" in message, message
    task = cluster.get_task("immutable-type")
    assert task is not None and task["spec"]["type"] == "placeholder-type", cluster.describe("immutable-type")


def test_tasktype_with_restart_policy_other_than_never_is_refused(cluster: Cluster) -> None:
    body: Obj = {
        "apiVersion": API_VERSION,
        "kind": "TaskType",
        "metadata": {"name": "restarts-itself"},
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [{"name": "main", "image": "busybox:1.36"}],
                        }
                    }
                }
            }
        },
    }
    with pytest.raises(ApiException) as caught:
        cluster.create(body)
    message = api_message(caught.value)
    assert caught.value.status == 422, f"expected 422 Unprocessable Entity, got {caught.value.status}: {message}"
    assert "restartPolicy must be Never" in message, message
