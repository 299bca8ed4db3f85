"""Operator settings: one tree, every field documented (set from the command line)."""

from __future__ import annotations

import dataclasses

from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.destinations import DestinationPolicy


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    core: CoreConfig = dataclasses.field(default_factory=CoreConfig)
    """Settings of the pure lifecycle: payload cap, default TTL and queue, retry defaults."""

    namespaces: tuple[str, ...] = ()
    """Serve only these namespaces; empty means every namespace (cluster-wide)."""

    workers: int = 16
    """Tasks reconciled concurrently."""

    api_concurrency: int = 16
    """API requests in flight at once (threads of the Kubernetes client)."""

    resync_seconds: float = 300.0
    """Every so often the operator re-lists what it watches and reconciles everything,
    so that an event lost by the API server or the network cannot leave a task stuck."""

    default_concurrency: int | None = None
    """Concurrency of the implicit ``default`` queue of every namespace; unset (None): unlimited.
    A TaskQueue named ``default`` in a namespace overrides it there."""

    queue_status_seconds: float = 5.0
    """TaskQueue status (pending, running, oldestPendingSeconds) is written at most this often."""

    http_port: int = 8080
    """Port of /healthz, /readyz and the /v1/ report endpoint; 0 turns the server off."""

    report_key_secret: str = "asynctask-report-key"
    """Secret (data.key) holding the HMAC key of report tokens; created when missing.
    Only used when ``core.report_url`` is set."""

    report_key_namespace: str = "default"
    """Namespace of that Secret: the operator's own (the chart passes POD_NAMESPACE)."""

    leader_elect: bool = False
    """Hold a coordination.k8s.io Lease before acting, so that of several replicas one runs."""

    lease_name: str = "asynctask-operator"
    """Name of the Lease (in ``report_key_namespace``, the operator's own namespace)."""

    lease_seconds: int = 15
    """How long a Lease is valid without renewal: a standby takes over at most this long after the leader dies."""

    renew_deadline: float = 10.0
    """A leader that could not renew for this long stops acting (before its Lease expires)."""

    retry_period: float = 2.0
    """How often the leader renews and a standby tries."""

    pod_name: str | None = None
    """This replica's pod (in ``report_key_namespace``). With leader election, the operator labels it
    ``asynctask.dev/leader=true|false`` and a standby is Ready too (the Service selects the leader)."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; default: in-cluster credentials, else $KUBECONFIG or ~/.kube/config."""

    context: str | None = None
    """The kubeconfig context to use; default: its current context."""

    callback_policy: DestinationPolicy = dataclasses.field(default_factory=DestinationPolicy)
    """Hosts and networks callbacks may reach besides public addresses (the SSRF guard's exceptions)."""

    callback_max_in_flight: int = 64
    """Callback deliveries in flight at once; more wait for a slot (never a reconcile worker)."""
