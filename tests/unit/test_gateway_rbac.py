"""The gateway's ServiceAccount: ``rbac.GATEWAY_RULES`` grants what the gateway's code calls, and no more.

The same AST scan as the operator's (tests/unit/test_rbac.py), over the calls whose Resource the
gateway's modules name (its own, and those of the generic list/watch loop it drives).
"""

from __future__ import annotations

from asynctask_operator import rbac
from tests.unit.test_rbac import of_gateway, scan


def gateway_grants() -> set[tuple[str, str, str]]:
    return {use.grant for use in scan() if of_gateway(use)}


def test_the_scan_sees_the_gateways_calls() -> None:
    found = gateway_grants()
    assert ("authentication.k8s.io", "tokenreviews", "create") in found  # Reviews.authenticate
    assert ("asynctask.dev", "asynctasks", "watch") in found  # reflect(api, ASYNCTASKS, ...) in gateway.app
    assert ("asynctask.dev", "scheduledtasks", "patch") in found
    assert ("asynctask.dev", "tasktypes", "watch") in found  # its TaskType cache: a submission's type is checked
    assert ("asynctask.dev", "tasktypes", "get") in found  # a type the cache has not seen yet is looked up


def test_every_call_is_granted_and_nothing_more() -> None:
    granted = rbac.grants(rbac.GATEWAY_RULES)
    found = gateway_grants()
    assert not found - granted, f"the gateway needs what GATEWAY_RULES does not grant: {sorted(found - granted)}"
    assert not granted - found, f"GATEWAY_RULES grants what the gateway never calls: {sorted(granted - found)}"


def test_the_gateway_writes_nothing_but_its_objects_and_reviews() -> None:
    grants = rbac.grants(rbac.GATEWAY_RULES)
    assert {group for group, _, _ in grants} == {"asynctask.dev", "authentication.k8s.io", "authorization.k8s.io", ""}
    assert {verb for group, _, verb in grants if group == ""} == {"get", "list"}  # the console reads pods and Events
    assert not any(resource.endswith("/status") for _, resource, _ in rbac.grants(rbac.GATEWAY_RULES))
