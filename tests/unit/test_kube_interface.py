"""The real client and the fake the unit and in-process tests run against answer one interface (adapters/api.py).

mypy checks the operator's code against :class:`Kube`, and that :class:`KubeClient` is one; the
tests are not type-checked, so the fake's conformance is checked here, parameter by parameter.
"""

from __future__ import annotations

import inspect

import pytest

from asynctask_operator.adapters.aiokube import AioKubeClient
from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.testing.fakekube import FakeKube

MEMBERS = sorted(name for name, value in vars(Kube).items() if callable(value) and not name.startswith("_"))


def test_the_interface_is_what_the_operator_calls() -> None:
    assert MEMBERS == ["create", "delete", "get", "list_objects", "list_pages", "patch", "replace", "watch"]


@pytest.mark.parametrize("impl", [KubeClient, AioKubeClient, FakeKube], ids=["KubeClient", "AioKubeClient", "FakeKube"])
@pytest.mark.parametrize("name", MEMBERS)
def test_each_implementation_takes_every_parameter_of_the_interface(impl: type, name: str) -> None:
    wanted = inspect.signature(getattr(Kube, name)).parameters
    given = inspect.signature(getattr(impl, name)).parameters
    for param in wanted.values():
        assert param.name in given, f"{impl.__name__}.{name} has no parameter {param.name}"
        assert given[param.name].kind == param.kind, f"{impl.__name__}.{name}({param.name}): {given[param.name].kind}"
        if param.default is not inspect.Parameter.empty:
            assert given[param.name].default == param.default, f"{impl.__name__}.{name}({param.name}) default"
    extra = [p for n, p in given.items() if n not in wanted and p.default is inspect.Parameter.empty]
    assert not extra, f"{impl.__name__}.{name} requires what the interface does not pass: {extra}"
    assert inspect.iscoroutinefunction(getattr(impl, name)) == inspect.iscoroutinefunction(getattr(Kube, name)) or (
        inspect.isasyncgenfunction(getattr(impl, name)) and name in ("list_pages", "watch")
    )


def test_both_count_their_requests() -> None:
    assert "counter" in Kube.__annotations__
    assert hasattr(FakeKube(), "counter")
