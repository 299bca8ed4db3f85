"""What Kubernetes RBAC answers a SubjectAccessReview, for the fakes' reviews to answer the same.

RBAC only allows (nothing it says is a denial), rule by rule: a request is allowed when some rule
bound to the user matches its verb, API group, resource (``pods/log`` for a subresource) and
namespace, and, for a rule that lists ``resourceNames``, its object's name. A request without a
name (a list, a watch of a namespace, a create) is matched only by rules without
``resourceNames``; a rule without them matches every name. So::

    >>> rules = [Rule("alice", ("get", "patch"), "asynctasks", "media", names=("mine",))]
    >>> allowed(rules, "alice", {"verb": "get", "resource": "asynctasks", "namespace": "media", "name": "mine"})
    True
    >>> allowed(rules, "alice", {"verb": "get", "resource": "asynctasks", "namespace": "media", "name": "other"})
    False
    >>> allowed(rules, "alice", {"verb": "get", "resource": "asynctasks", "namespace": "media"})
    False
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from asynctask_operator.core.models import GROUP


@dataclasses.dataclass(frozen=True)
class Rule:
    """One PolicyRule of a Role bound to ``user`` in ``namespace``."""

    user: str
    verbs: tuple[str, ...]
    resource: str  # "pods/log" for a subresource
    namespace: str
    names: tuple[str, ...] = ()  # resourceNames; empty: every object
    group: str = GROUP

    def matches(self, user: str, attributes: Mapping[str, str]) -> bool:
        resource = attributes.get("resource", "")
        if attributes.get("subresource"):
            resource = f"{resource}/{attributes['subresource']}"
        name = attributes.get("name", "")
        return (
            self.user == user
            and attributes.get("verb") in self.verbs
            and attributes.get("group", GROUP) == self.group
            and resource == self.resource
            and attributes.get("namespace") == self.namespace
            and (not self.names or name in self.names)
        )


CORE = frozenset({"pods", "pods/log", "events"})


def grant(user: str, verb: str, resource: str, namespace: str, *names: str) -> Rule:
    """A rule of one verb on one resource, in the resource's own API group (the core group for pods and Events)."""
    return Rule(user, (verb,), resource, namespace, names, "" if resource in CORE else GROUP)


def allowed(rules: Iterable[Rule], user: str, attributes: Mapping[str, str]) -> bool:
    return any(rule.matches(user, attributes) for rule in rules)
