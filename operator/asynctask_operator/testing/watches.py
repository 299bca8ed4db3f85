"""What the fake API server tells watchers: the events of its writes, and the open watches they go to.

An :class:`Event` holds the object as stored, which is never changed afterwards (the model
writes a new dict for every version): a face hands out copies (in process) or its JSON (over
HTTP), and the event log and listings share the versions instead of copying them.
"""

from __future__ import annotations

import asyncio
import dataclasses

from asynctask_operator.adapters.kube import Resource
from asynctask_operator.core.labelselectors import Term, matches
from asynctask_operator.core.wire import Obj
from asynctask_operator.testing.semantics import labels_of, namespace_of


@dataclasses.dataclass(frozen=True)
class Event:
    """One change of one object: ``ADDED``, ``MODIFIED`` or ``DELETED``, at resourceVersion ``version``."""

    version: int
    resource: Resource
    type: str
    object: Obj

    def wire(self) -> Obj:
        """As a watch stream carries it."""
        return {"type": self.type, "object": self.object}


class Watch:
    """One open watch of ``resource`` (in ``namespace``, or all, with a label selector): the
    events it was given, in order, in :attr:`events`; ``None`` there ends it.

    The model puts events in without waiting (one ``put_nowait`` each); a face takes them out
    at its own pace: a test's consumer in process, a stream over HTTP."""

    def __init__(self, resource: Resource, namespace: str | None, terms: list[Term]) -> None:
        self.resource = resource
        self.namespace = namespace
        self.terms = terms
        self.events: asyncio.Queue[Obj | None] = asyncio.Queue()

    def sees(self, resource: Resource, obj: Obj) -> bool:
        return (
            resource == self.resource
            and (self.namespace is None or namespace_of(obj) == self.namespace)
            and matches(self.terms, labels_of(obj))
        )

    def give(self, event: Obj) -> None:
        self.events.put_nowait(event)

    def end(self) -> None:
        """The server ends the stream (its timeout, or a restart): the client watches again."""
        self.events.put_nowait(None)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One event of a write and the open watches it was given to."""

    event: Event
    watches: tuple[Watch, ...]


@dataclasses.dataclass(frozen=True)
class Written:
    """What a write did: its answer, and its events (a delete's dependents' too), in order, each with
    the watches it went to (a face that answers only once they were handled waits on those)."""

    answer: Obj
    deliveries: tuple[Delivery, ...] = ()

    @property
    def events(self) -> list[Event]:
        return [d.event for d in self.deliveries]
