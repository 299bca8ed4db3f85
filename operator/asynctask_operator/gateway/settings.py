"""The gateway's settings: one dataclass, a docstring per field (the CLI's help is made of them)."""

from __future__ import annotations

import dataclasses

from asynctask_operator.core.config import CoreConfig


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces served (each one watched); none: every namespace."""
    kubeconfig: str | None = None
    """Kubeconfig file; default: in-cluster credentials, else ~/.kube/config."""
    context: str | None = None
    """Kubeconfig context; default: the current one."""
    host: str = "0.0.0.0"
    """Address to listen on."""
    port: int = 8000
    """Port to listen on."""
    tls_cert: str | None = None
    """PEM certificate file (the chain, leaf first) to serve HTTPS with, given with ``tls_key``; none: plain
    HTTP. Both files are read once, at start: a renewed certificate is served after a restart."""
    tls_key: str | None = None
    """PEM private key file of ``tls_cert``."""
    max_body_bytes: int = 256 * 1024
    """Largest request body accepted (413 beyond)."""
    rate_limit: float = 20.0
    """Requests a second per user, on average (429 with Retry-After beyond); 0: no limit."""
    rate_burst: int = 40
    """Requests a user may make at once before the rate limit applies."""
    auth_failure_limit: float = 20.0
    """Failed authentications (401) a minute per client address, on average; beyond, its requests that would
    need a TokenReview are answered 429 with Retry-After, without one; 0: no limit."""
    auth_failure_burst: int = 20
    """Failed authentications a client address may make at once before that limit applies."""
    trusted_proxy_header: str | None = None
    """Take the client address from the last entry of this header (X-Forwarded-For, as the proxy in front
    appends it) instead of the connection's peer. Only behind a proxy that sets it: otherwise a client names
    its own address, and escapes the limit on failed authentications."""
    allow_anonymous: bool = False
    """Serve requests without a token as system:anonymous (still authorized by SubjectAccessReview)."""
    trusted_header: str | None = None
    """Take the user from this request header (set by an auth proxy) instead of a TokenReview. Anyone who
    can reach the gateway directly can then claim any user: only behind a proxy that sets the header."""
    trusted_groups_header: str | None = None
    """With --trusted-header: the header holding the user's groups, comma-separated."""
    payload_limit_bytes: int = CoreConfig.payload_limit_bytes
    """Largest payload a submission may carry, as compact JSON (422 beyond): the operator's ``--payload-limit``,
    which ends a larger task PayloadTooLarge; give both the same value."""
    list_limit: int = 500
    """The hard maximum page size of a listing."""
    keepalive_seconds: float = 15.0
    """Seconds between keep-alive comments on an idle event stream (ingress idle timeouts)."""
    subscriber_buffer: int = 256
    """Events an event-stream client may fall behind before it is dropped."""
    cloudevent_types: tuple[tuple[str, str], ...] = ()
    """CloudEvent ``type`` -> TaskType name: what ``POST …/cloudevents`` creates for each event type."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS; none: CORS off."""
    archive_dsn: str | None = dataclasses.field(default=None, repr=False)
    """The archive's database (``postgresql://…``, ``sqlite:///…``; docs/archive.md): tasks past their TTL are read
    from it (a task's GET, the history, its logs, long-window statistics); none: live tasks only. Never logged."""
    aggregation_port: int = 0
    """Serve the aggregated API ``archive.asynctask.dev`` on this port (API aggregation: the kube-apiserver proxies
    ``kubectl asynctask history`` and the reads of gone tasks here, as the user it authenticated), over TLS that
    requires the API server's front-proxy client certificate; 0: off. Needs ``archive_dsn``."""
    aggregation_tls_cert: str | None = None
    """PEM certificate (chain) of the aggregation port: the one the APIService's ``caBundle`` verifies, for the name
    ``<service>.<namespace>.svc``. Read once, at start."""
    aggregation_tls_key: str | None = None
    """PEM private key of ``aggregation_tls_cert``."""
    console: bool = True
    """Serve the web console at /ui/ (sign-in with a bearer token, or the trusted header)."""
    session_seconds: float = 8 * 3600.0
    """How long a console sign-in lasts before the user signs in again."""
    log_probes: bool = False
    """Log requests to /healthz, /readyz and /metrics too (kubelets' probes and scrapers: every few seconds)."""
