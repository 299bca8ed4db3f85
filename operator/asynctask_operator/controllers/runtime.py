"""The running operator: watches feed the cache; workers reconcile keys off one queue.

Tasks, Jobs and pods (thousands) are listed in pages and watched by the operator itself
(:meth:`Runtime.follow`, ADR 0013); kopf supplies login, the process lifecycle and the
watches of TaskTypes, TaskQueues and ScheduledTasks. Every handler only stores what it
sees and queues a key: no kopf handler state, no finalizers, no annotations on the
objects. Everything else is ours: the cache (filled by a listing before the first
reconcile, so "the TaskType does not exist" is never concluded from an empty cache),
the work queue, the clock, and a periodic resync that repairs what a lost event could
have left stale.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import kopf

from asynctask_operator.adapters.election import LeaderElector, label_own_pod
from asynctask_operator.adapters.http import HttpServer
from asynctask_operator.adapters.kube import (
    ASYNCTASKS,
    JOBS,
    PODS,
    SCHEDULEDTASKS,
    SECRETS,
    TASKQUEUES,
    TASKTYPES,
    ApiError,
    Conflict,
    Gone,
    KubeClient,
    NotFound,
    Resource,
    credentials,
    load_configuration,
)
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.adapters.webhooks import HttpxSender, Sender
from asynctask_operator.controllers import kopfcost
from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache, Key, key_of
from asynctask_operator.controllers.callbacks import CallbackDispatcher, SecretReader
from asynctask_operator.controllers.intake import TaskIntake
from asynctask_operator.controllers.reports import ReportStore
from asynctask_operator.controllers.schedules import ScheduleReconciler
from asynctask_operator.controllers.tasks import RequeueSoon, TaskReconciler
from asynctask_operator.controllers.workqueue import Clock, WorkQueue
from asynctask_operator.core.models import GROUP, VERSION
from asynctask_operator.core.naming import LABEL_MANAGED_BY, MANAGER
from asynctask_operator.core.tasktypes import tasktype_status
from asynctask_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)

OWNED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
WorkKey = tuple[str, str, str]  # (kind, namespace, name), kind "task", "tasktype", "queue" or "scheduledtask"
MAX_ERROR_BACKOFF = 60.0
MAX_WATCH_BACKOFF = 30.0
Store = Callable[[dict[str, Any]], object]  # put a listed object into the cache
Forget = Callable[[Key], object]  # drop an object a listing no longer has
Versions = dict[tuple[str, str | None], str]  # (kind, namespace) -> the resourceVersion of its listing


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Runtime:
    def __init__(self, api: KubeClient, settings: OperatorSettings, sender: Sender | None = None) -> None:
        self.api = api
        self.settings = settings
        self.cache = Cache()
        self.queue: WorkQueue[WorkKey] = WorkQueue()
        self.clock: Clock[WorkKey] = Clock(self.queue)
        self.admissions = Admissions(
            api,
            settings.default_concurrency,
            wake_task=lambda key: self.queue.add(("task", *key)),
            wake_queue_at=lambda key, at: self.clock.schedule(("queue", *key), at),
            status_interval=settings.queue_status_seconds,
        )
        self.intake = TaskIntake(
            self.cache,
            self.admissions,
            wake_task=lambda key: self.queue.add(("task", *key)),
            wake_schedule=lambda key: self.queue.add(("scheduledtask", *key)),
            default_queue=lambda: self.settings.core.default_queue,
        )
        self.reports = ReportStore(
            self.cache, lambda: self.settings.core, wake=lambda key: self.queue.add(("task", *key))
        )
        self.metrics = Metrics()
        self.metrics.watch_queues(self._queue_samples)
        api.counter.listeners.append(self.metrics.api_request)
        self.callbacks = CallbackDispatcher(
            sender or HttpxSender(settings.callback_policy, max_connections=max(settings.callback_max_in_flight, 1)),
            SecretReader(api),
            wake=lambda key: self.queue.add(("task", *key)),
            max_in_flight=max(settings.callback_max_in_flight, 1),
            metrics=self.metrics,
        )
        self.tasks = TaskReconciler(
            self.cache, api, settings, self.intake, self.admissions, self.reports, self.metrics, self.callbacks
        )
        self._failures: dict[WorkKey, int] = {}
        self.schedules = ScheduleReconciler(
            self.cache,
            api,
            self.intake,
            wake=lambda key: self.queue.add(("scheduledtask", *key)),
            metrics=self.metrics,
        )

    # ------------------------------------------------------------------ cache feeding

    def on_task(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.intake.gone(key)
            self.clock.cancel(("task", *key))
            self.reports.forget(key)
            self.callbacks.forget(key)
            return
        # The echo of what is held already (the answer to a write, a listing): whatever stored
        # that copy queued the task then (TaskIntake), so there is nothing new to do.
        if self.cache.holds("task", obj):
            return
        if self.cache.stale_task(obj):  # an older version than the cache holds (our own write overtook it)
            return
        self.cache.watched("task", key)
        self.intake.take(obj)

    def on_tasktype(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.cache.drop_tasktype(key)
        else:
            self.cache.put_tasktype(obj)
            self.queue.add(("tasktype", *key))
        self._wake_tasks_of_type(key)

    def on_taskqueue(self, event_type: str | None, obj: dict[str, Any]) -> None:
        for ns, name in self.admissions.on_queue(event_type, obj):
            self.queue.add(("task", ns, name))

    def on_scheduledtask(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.cache.drop_scheduledtask(key)
            self.clock.cancel(("scheduledtask", *key))
            return
        self.cache.put_scheduledtask(obj)
        self.queue.add(("scheduledtask", *key))

    def on_job(self, event_type: str | None, obj: dict[str, Any]) -> None:
        ns, name = key_of(obj)
        if event_type == "DELETED":
            view = self.cache.drop_job((ns, name))
        elif self.cache.holds("job", obj):
            return
        else:
            self.cache.watched("job", (ns, name))
            view = self.cache.put_job(obj)
        if view is not None and view.owner_name:
            self.queue.add(("task", ns, view.owner_name))

    def on_pod(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type != "DELETED" and self.cache.holds("pod", obj):
            return
        view = self.cache.drop_pod(key) if event_type == "DELETED" else self.cache.put_pod(obj)
        if view is None:
            return
        owner = self.cache.owner_of_job(view.namespace, view.job_name)
        if owner is not None:
            self.queue.add(("task", *owner))

    def _wake_tasks_of_type(self, key: Key) -> None:
        for tns, tname in self.cache.unfinished_tasks_of_type(*key):
            self.queue.add(("task", tns, tname))

    # ------------------------------------------------------------------ listing and watching

    def _listing_of(self, kind: str) -> tuple[Store, Forget]:
        """How a listing of ``kind`` stores an object, and forgets one it no longer has (a missed DELETED)."""

        def stub(key: Key) -> dict[str, Any]:
            return {"metadata": {"namespace": key[0], "name": key[1]}}

        table: dict[str, tuple[Store, Forget]] = {
            "task": (self.intake.take, lambda key: self.on_task("DELETED", stub(key))),
            "job": (self.cache.put_job, self.cache.drop_job),
            "pod": (self.cache.put_pod, self.cache.drop_pod),
            "tasktype": (self.cache.put_tasktype, self.cache.drop_tasktype),
            "scheduledtask": (self.cache.put_scheduledtask, lambda key: self.on_scheduledtask("DELETED", stub(key))),
        }
        return table[kind]

    async def _relist(self, kind: str, resource: Resource, namespace: str | None, selector: str | None = None) -> str:
        """List one kind (in one namespace, or all) into the cache a page at a time; the listing's resourceVersion.

        What the cache got since the listing began (a watch event, the answer to a write) is at
        least as new as the listing, and the watch brings whatever comes after it: putting the
        listed copy over it would undo a newer state with nothing left to redo it (a finished Job
        seen running again, a task read back to an earlier phase). The listing only fills gaps,
        and drops what it no longer has. Each page goes into the cache as it is read: the raw
        objects of a whole listing at once would be the operator's peak memory (~7 KB per task
        decoded), which the process keeps long after."""
        store, forget = self._listing_of(kind)
        while True:
            began = time.monotonic()
            listed: set[Key] = set()
            version = ""
            try:
                async for page, listed_version in self.api.list_pages(resource, namespace, selector):
                    version = listed_version
                    for obj in page:
                        key = key_of(obj)
                        listed.add(key)
                        if not self.cache.changed_since(kind, key, began):
                            store(obj)
            except Gone:  # the continue token expired between two pages: list again from the start
                logger.info("listing %s: continue token expired; listing again", resource.plural)
                continue
            for key in self.cache.stale(kind, listed, began, namespace):
                forget(key)
            return version

    async def sync(self) -> Versions:
        """List everything, fill the cache, and queue every task; the listings' resourceVersions.

        Run once before the first reconcile (so "the TaskType does not exist" is never concluded
        from an empty cache), then every ``resync_seconds`` (a level-based repair of whatever a
        lost event could have left stale). The watches of tasks, Jobs and pods start from the
        first one's resourceVersions (:meth:`followers`)."""
        began = time.monotonic()
        versions: Versions = {}
        namespaces: Iterable[str | None] = self.settings.namespaces or (None,)
        try:
            for ns in namespaces:
                await self._relist("tasktype", TASKTYPES, ns)
            queues = [obj for ns in namespaces for obj in await self.api.list_objects(TASKQUEUES, ns)]
            listed_queues = {key_of(o) for o in queues}
            for obj in queues:
                self.on_taskqueue(None, obj)
            for key in [k for k in self.admissions.objects if k not in listed_queues]:
                self.on_taskqueue("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
            for ns in namespaces:
                versions["job", ns] = await self._relist("job", JOBS, ns, OWNED_SELECTOR)
                versions["pod", ns] = await self._relist("pod", PODS, ns, OWNED_SELECTOR)
                versions["task", ns] = await self._relist("task", ASYNCTASKS, ns)
                await self._relist("scheduledtask", SCHEDULEDTASKS, ns)
        except NotFound as exc:
            raise SystemExit(
                "the asynctask.dev CRDs are not installed in this cluster: run `asynctask-operator crds --apply` "
                f"(or kubectl apply -f crds/) first ({exc.message})"
            ) from None
        self.cache.forget_drops_before(began)
        self.cache.synced.update({"tasktypes", "asynctasks", "jobs", "pods", "scheduledtasks"})
        for ns, name in list(self.cache.tasktypes):
            self.queue.add(("tasktype", ns, name))
        self._wake_tasks_in(None)
        for ns, name in list(self.cache.scheduledtasks):
            self.queue.add(("scheduledtask", ns, name))
        logger.info(
            "synced %d tasks, %d task types, %d jobs, %d pods in %.2fs",
            len(self.cache.tasks),
            len(self.cache.tasktypes),
            len(self.cache.jobs),
            len(self.cache.pods),
            time.monotonic() - began,
        )
        return versions

    def followers(self, versions: Versions) -> list[asyncio.Task[None]]:
        """The watches of tasks, Jobs and pods, one per served namespace (or one cluster-wide), from
        the resourceVersions :meth:`sync` returned."""
        out = []  # each Resource named at its call: tests/unit/test_rbac.py reads the grants from here
        for ns in self.settings.namespaces or (None,):
            tasks = self.follow("task", ASYNCTASKS, ns, None, versions.get(("task", ns), ""))
            jobs = self.follow("job", JOBS, ns, OWNED_SELECTOR, versions.get(("job", ns), ""))
            pods = self.follow("pod", PODS, ns, OWNED_SELECTOR, versions.get(("pod", ns), ""))
            out += [
                asyncio.create_task(c, name=f"watch-{k}-{ns}")
                for k, c in (("tasks", tasks), ("jobs", jobs), ("pods", pods))
            ]
        return out

    async def follow(
        self, kind: str, resource: Resource, namespace: str | None, selector: str | None = None, version: str = ""
    ) -> None:
        """Watch one kind, from where the last event (or bookmark) left off, for as long as the operator runs.

        The operator's own list-then-watch, not kopf's, for the kinds there are thousands of: kopf
        would list everything again at start and keep each object's event machinery and memory
        (ADR 0013). A watch that ends is resumed; one whose resourceVersion the server no longer
        serves (410 Gone) lists again; a failure backs off. Events feed the same handlers as kopf's."""
        handler = {"task": self.on_task, "job": self.on_job, "pod": self.on_pod}[kind]
        failures = 0
        while True:
            try:
                if not version:
                    version = await self._relist(kind, resource, namespace, selector)
                    self._wake_tasks_in(namespace)  # what changed while nobody watched
                async for event in self.api.watch(resource, namespace, selector, version):
                    failures = 0
                    obj = event.get("object")
                    if not isinstance(obj, dict):
                        continue
                    if event.get("type") == "ERROR":  # a Status in place of an object
                        raise (Gone if obj.get("code") == 410 else ApiError)(
                            int(obj.get("code") or 0), str(obj.get("reason") or ""), str(obj.get("message") or "")
                        )
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if event.get("type") != "BOOKMARK":
                        try:
                            handler(event.get("type"), obj)
                        except Exception:  # one object the cache cannot take must not stall the stream
                            logger.exception("%s %s/%s: event skipped", kind, *key_of(obj))
            except Gone:
                logger.info("watching %s: resourceVersion %s expired; listing again", resource.plural, version)
                version = ""
            except Exception as exc:
                failures += 1
                delay = min(0.5 * 2 ** (failures - 1), MAX_WATCH_BACKOFF)
                logger.warning("watching %s failed (%s); again in %.1fs", resource.plural, exc, delay)
                await asyncio.sleep(delay)

    def _wake_tasks_in(self, namespace: str | None) -> None:
        for ns, name in list(self.cache.tasks):
            if namespace is None or ns == namespace:
                self.queue.add(("task", ns, name))

    async def resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            try:
                await self.sync()
            except ApiError as exc:
                logger.warning("resync failed, the next one will retry: %s", exc)

    # ------------------------------------------------------------------ working

    def background(self, versions: Versions) -> list[asyncio.Task[None]]:
        """Everything that runs once :meth:`sync` filled the cache: the workers, the watches of tasks,
        Jobs and pods, the clock, the periodic resync, the queue status writes."""
        tasks = [asyncio.create_task(self.worker(), name=f"worker-{i}") for i in range(self.settings.workers)]
        tasks.extend(self.followers(versions))
        tasks.append(asyncio.create_task(self.clock.run(), name="clock"))
        tasks.append(asyncio.create_task(self.resync_forever(), name="resync"))
        tasks.append(asyncio.create_task(self.admissions.write_statuses_forever(), name="queue-status"))
        return tasks

    async def worker(self) -> None:
        while True:
            key = await self.queue.get()
            began = time.perf_counter()
            try:
                due = await self._reconcile(key)
                self._failures.pop(key, None)
                if due is not None:
                    self.clock.schedule(key, time.time() + due)
            except RequeueSoon as soon:
                logger.debug("%s %s/%s: %s", *key, soon)
                self.clock.schedule(key, time.time() + soon.delay)
            except Exception as exc:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(0.5 * 2 ** (failures - 1), MAX_ERROR_BACKOFF)
                if isinstance(exc, ApiError):
                    logger.warning("%s %s/%s: %s; again in %.1fs", *key, exc, delay)
                else:
                    logger.exception("%s %s/%s: reconcile failed; again in %.1fs", *key, delay)
                self.clock.schedule(key, time.time() + delay)
            finally:
                self.metrics.reconcile_seconds.labels(key[0]).observe(time.perf_counter() - began)
                self.queue.done(key)

    def _queue_samples(self) -> list[tuple[str, str, int, int, int]]:
        now = time.time()
        samples = []
        for ns, name in self.admissions.book.queues():
            counts = self.admissions.book.counts((ns, name), now)
            samples.append((ns, name, counts.pending, counts.running, counts.oldest_pending_seconds))
        return samples

    async def _reconcile(self, key: WorkKey) -> float | None:
        kind, ns, name = key
        if kind == "task":
            return await self.tasks.reconcile((ns, name), utcnow())
        if kind == "scheduledtask":
            return await self.schedules.reconcile((ns, name), utcnow())
        if kind == "queue":
            self.admissions.pump((ns, name))
            return None
        await self._reconcile_tasktype((ns, name))
        return None

    async def _reconcile_tasktype(self, key: Key) -> None:
        tasktype = self.cache.tasktypes.get(key)
        if tasktype is None:
            return
        status = tasktype_status(tasktype, utcnow())
        if status is None:
            return
        try:
            updated = await self.api.patch(TASKTYPES, key[0], key[1], {"status": status.dump()}, subresource="status")
        except NotFound:
            return
        self.cache.put_tasktype(updated)

    # ------------------------------------------------------------------ kopf

    def registry(self) -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            # The same kubeconfig/context (or in-cluster account) as the operator's own client:
            # kopf's stock login would read $KUBECONFIG as it was when the client library loaded.
            config = load_configuration(self.settings.kubeconfig, self.settings.context)
            return kopf.ConnectionInfo(**credentials(config))

        def feed(handler: Any) -> Any:
            async def on_event(event: dict[str, Any], **_: Any) -> None:
                obj = event.get("object")
                if isinstance(obj, dict) and event.get("type") != "BOOKMARK":
                    handler(event.get("type"), obj)

            return on_event

        # Tasks, Jobs and pods are watched by the operator itself (``follow``); kopf the few rest.
        kopf.on.event(GROUP, VERSION, "tasktypes", registry=registry)(feed(self.on_tasktype))
        kopf.on.event(GROUP, VERSION, "taskqueues", registry=registry)(feed(self.on_taskqueue))
        kopf.on.event(GROUP, VERSION, "scheduledtasks", registry=registry)(feed(self.on_scheduledtask))
        return registry

    def kopf_settings(self) -> kopf.OperatorSettings:
        settings = kopf.OperatorSettings()
        settings.posting.enabled = False  # kopf's own Events would be API writes per log line
        settings.scanning.disabled = True  # no CRD/namespace scanning: fewer permissions, fewer watches
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 330
        return kopfcost.trim(settings)


async def run(api: KubeClient, settings: OperatorSettings, stop: asyncio.Event | None = None) -> None:
    """Run until stopped by a signal (kopf handles SIGINT/SIGTERM) or by ``stop``."""
    if settings.core.report_url:
        key = await load_report_key(api, settings.report_key_namespace, settings.report_key_secret)
        settings = dataclasses.replace(settings, core=dataclasses.replace(settings.core, report_key=key))
    runtime = Runtime(api, settings)
    elector: LeaderElector | None = None
    if settings.leader_elect:
        elector = LeaderElector(
            api,
            settings.report_key_namespace,
            settings.lease_name,
            # pid 1 again after a container restart: the suffix makes each process a new candidate.
            f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
            lease_seconds=settings.lease_seconds,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
        )
    labelled = False  # this replica's pod carries asynctask.dev/leader (so a standby may be Ready)
    if elector is not None and settings.pod_name:
        labelled = await label_own_pod(api, settings.report_key_namespace, settings.pod_name, leading=False)

    def ready() -> bool:
        """The leader once its cache is filled; a standby when the Service cannot send it reports."""
        if elector is not None and not elector.leading:
            return labelled
        return "asynctasks" in runtime.cache.synced

    server: HttpServer | None = None
    if settings.http_port:
        server = HttpServer(settings.http_port, runtime.reports, ready=ready, metrics=runtime.metrics.exposition)
        await server.start()
    if elector is not None:
        await elector.acquire()  # a standby waits here; its probes answer meanwhile
    versions = await runtime.sync()
    if elector is not None and settings.pod_name:  # even if "false" failed: the Service must find the leader
        await label_own_pod(api, settings.report_key_namespace, settings.pod_name, leading=True)
    runtime.metrics.leader.set(1)
    background = runtime.background(versions)
    halt = asyncio.Event()
    deposed = asyncio.Event()  # the Lease was lost (not a shutdown)
    if stop is not None:
        background.append(asyncio.create_task(_forward(stop, halt)))
    if elector is not None:

        def lost() -> None:  # stop writing now, before the Lease can pass to a standby
            deposed.set()
            for task in background:
                task.cancel()
            runtime.callbacks.cancel()
            runtime.metrics.leader.set(0)
            halt.set()

        background.append(asyncio.create_task(elector.keep(on_lost=lost), name="lease"))
    stop_flag: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    relay = asyncio.create_task(_relay(halt, stop_flag))
    registry = runtime.registry()

    @kopf.on.cleanup(registry=registry)
    def settle_stop_flag(**_: Any) -> None:
        # Stopped by a signal, kopf would wait 5 s for its own waiter of this flag before exiting
        # (a "hung" task): every SIGTERM — a rollout, a handover — took 5 s longer than it needs.
        if not stop_flag.done():
            stop_flag.set_result(None)

    try:
        await kopf.operator(
            registry=registry,
            settings=runtime.kopf_settings(),
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=True,
            stop_flag=stop_flag,
        )
    finally:
        relay.cancel()
        if server is not None:
            await server.stop()
        for task in background:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*background, return_exceptions=True)
            await runtime.callbacks.close()
        if elector is not None and elector.leading:  # stopped, not deposed: hand over at once
            await elector.release()
    if deposed.is_set():
        raise SystemExit("lost the leader Lease: exiting, to come back as a standby")


async def load_report_key(api: KubeClient, namespace: str, name: str) -> bytes:
    """The HMAC key of report tokens, shared by every replica and restart through one Secret.

    Read it; if it does not exist, generate one and create the Secret (if another replica
    created it first, the 409 sends us back to read theirs)."""
    for _ in range(3):
        try:
            secret = await api.get(SECRETS, namespace, name)
            value = (secret.get("data") or {}).get("key")
            if value:
                return base64.b64decode(value)
            raise SystemExit(f"Secret {namespace}/{name} has no data.key: delete it to have a new key generated")
        except NotFound:
            pass
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": MANAGER}},
            "type": "Opaque",
            "data": {"key": base64.b64encode(secrets.token_bytes(32)).decode()},
        }
        try:
            await api.create(SECRETS, namespace, body)
            logger.info("created Secret %s/%s with a new report-token key", namespace, name)
        except Conflict:
            continue
    raise SystemExit(f"could not read or create Secret {namespace}/{name} for the report-token key")


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _relay(stop: asyncio.Event, flag: asyncio.Future[None]) -> None:
    await stop.wait()
    if not flag.done():
        flag.set_result(None)
