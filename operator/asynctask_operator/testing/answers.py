"""What the fake API server answers without touching its store, as a test sets it: reviews and faults.

- :class:`Reviews`: TokenReviews from a table of tokens, SubjectAccessReviews by a function of the
  user, their groups and the request's attributes (a test's RBAC, e.g. ``tests/support/rbac.py``);
  until a test sets them, both are refused; the server keeps none, as a real one;
- :class:`Faults`: the next ``times`` requests of a verb on a resource (and name) answered with an
  error instead, before anything is done.

>>> from asynctask_operator.adapters.kube import ASYNCTASKS
>>> faults = Faults()
>>> faults.add("patch", "asynctasks", ApiError(503, "ServiceUnavailable", "try later"))
>>> faults.take("patch", ASYNCTASKS, "t1").status, faults.take("patch", ASYNCTASKS, "t1")
(503, None)
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

from asynctask_operator.adapters.kube import ApiError, Resource
from asynctask_operator.core.wire import Obj

Tokens = dict[str, tuple[str, tuple[str, ...]]]  # token -> (user, groups)
Decide = Callable[[str, tuple[str, ...], dict[str, str]], bool]  # (user, groups, resourceAttributes) -> allowed


class Reviews:
    """The TokenReview and SubjectAccessReview answers: ``tokens`` and ``decide``, None until set."""

    def __init__(self) -> None:
        self.tokens: Tokens | None = None
        self.decide: Decide | None = None

    def answer(self, resource: Resource, body: Obj) -> Obj:
        """The review ``body`` with its ``status`` filled in."""
        spec = body.get("spec") or {}
        answer = copy.deepcopy(body)
        if resource.plural == "tokenreviews":
            found = (self.tokens or {}).get(str(spec.get("token")))
            user = {"username": found[0], "groups": list(found[1])} if found else {}
            answer["status"] = {"authenticated": found is not None, "user": user}
        else:
            groups = tuple(spec.get("groups") or ())
            attributes = spec.get("resourceAttributes") or {}
            allowed = self.decide is not None and self.decide(str(spec.get("user")), groups, attributes)
            answer["status"] = {"allowed": allowed}
        return answer


@dataclasses.dataclass
class Fault:
    verb: str
    plural: str
    name: str | None  # None: any
    error: ApiError
    left: int


class Faults:
    """Errors to answer requests with, each for its next ``times`` matching requests."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, verb: str, plural: str, error: ApiError, *, name: str | None = None, times: int = 1) -> None:
        self._faults.append(Fault(verb, plural, name, error, times))

    def take(self, verb: str, resource: Resource, name: str) -> ApiError | None:
        """The error this request is to be answered with (one use of it), or None."""
        for fault in self._faults:
            if fault.left > 0 and (fault.verb, fault.plural) == (verb, resource.plural) and fault.name in (None, name):
                fault.left -= 1
                return fault.error
        return None
