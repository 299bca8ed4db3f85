"""Who a request on the aggregation port comes from: the API server's front proxy, and the user it names.

The kube-apiserver serves the aggregated API ``archive.asynctask.dev`` by proxying each request to
the gateway (docs/gateway.md, "kubectl and the aggregated API"). It authenticates the user first, by
whatever the cluster uses (tokens, client certificates, exec plugins, OIDC), then connects to the
gateway's aggregation port with its *front-proxy client certificate* and names the user in headers
(``X-Remote-User``, ``X-Remote-Group``, ``X-Remote-Extra-<key>``). Those headers are believed only
on that port, and only after:

1. TLS has verified the client's certificate against the front proxy's CA (uvicorn, ``CERT_REQUIRED``):
   a connection without one, or with one from another CA, never reaches the application;
2. :class:`FrontProxyOnly` has found the certificate's common name among the API server's
   ``requestheader-allowed-names`` (when it lists any), on every request.

The CA and the header names are the API server's own, read at start from the ConfigMap
``kube-system/extension-apiserver-authentication`` (:func:`read_front_proxy`). The main port never
reads these headers: its routes take a bearer token (:mod:`.access`).
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import CONFIGMAPS, ApiError
from asynctask_operator.gateway import apiobjects
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem

CONFIGMAP_NAMESPACE, CONFIGMAP_NAME = "kube-system", "extension-apiserver-authentication"
USER_KEY = "front_proxy_user"
"""Where :class:`FrontProxyOnly` puts the user in the request's ``scope["state"]`` (``request.state``)."""


class FrontProxyUnavailable(Exception):
    """The API server's front-proxy settings cannot be read, or name no CA: the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class FrontProxy:
    """The API server's ``--requestheader-*`` settings, as its ConfigMap publishes them."""

    client_ca: str
    """PEM: the CA that signs the front proxy's client certificate (``requestheader-client-ca-file``)."""
    allowed_names: tuple[str, ...] = ()
    """Common names a client certificate may have; empty: any the CA signed."""
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)
    uid_headers: tuple[str, ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, str]) -> FrontProxy:
        """From the ConfigMap's ``data``; :class:`FrontProxyUnavailable` without a CA or with a malformed list.

        >>> FrontProxy.of({"requestheader-client-ca-file": "PEM", "requestheader-allowed-names": '["front-proxy-client"]',
        ...                "requestheader-username-headers": '["X-Remote-User"]'}).allowed_names
        ('front-proxy-client',)
        """
        ca = str(data.get("requestheader-client-ca-file") or "").strip()
        if not ca:
            raise FrontProxyUnavailable(
                f"ConfigMap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} has no requestheader-client-ca-file: the API server "
                "runs without --requestheader-client-ca-file, so API aggregation is off in this cluster"
            )
        defaults = cls(ca)

        def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            text = data.get(f"requestheader-{key}")
            if text is None:
                return default
            try:
                value = json.loads(text or "[]")
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise FrontProxyUnavailable(f"requestheader-{key} of {CONFIGMAP_NAME} is not a JSON list of strings")
            return tuple(value)

        return cls(
            client_ca=ca,
            allowed_names=names("allowed-names", ()),
            username_headers=names("username-headers", defaults.username_headers),
            group_headers=names("group-headers", defaults.group_headers),
            extra_prefixes=names("extra-headers-prefix", defaults.extra_prefixes),
            uid_headers=names("uid-headers", ()),
        )

    def user_of(self, headers: Iterable[tuple[bytes, bytes]]) -> User | None:
        """The user the headers name, as the API server's request-header authenticator reads them: the first
        username header with a value; every value of every group header; each ``<prefix><key>`` header an
        extra (its key lower-cased and %-decoded); None without a user.

        >>> FrontProxy("PEM").user_of([(b"x-remote-user", b"alice"), (b"x-remote-group", b"dev"),
        ...                            (b"x-remote-group", b"system:authenticated"), (b"x-remote-extra-scopes", b"a")])
        User(name='alice', groups=('dev', 'system:authenticated'), uid='', extra=(('scopes', ('a',)),))
        """
        pairs = [(k.decode("latin-1").lower(), v.decode("latin-1").strip()) for k, v in headers]

        def values(names: tuple[str, ...]) -> list[str]:
            wanted = [n.lower() for n in names]
            return [v for n in wanted for k, v in pairs if k == n and v]

        users, uids = values(self.username_headers), values(self.uid_headers)
        if not users:
            return None
        extra: dict[str, list[str]] = {}
        for prefix in (p.lower() for p in self.extra_prefixes):
            for key, value in pairs:
                if key.startswith(prefix) and len(key) > len(prefix):
                    extra.setdefault(urllib.parse.unquote(key[len(prefix) :]).lower(), []).append(value)
        return User(
            users[0],
            tuple(values(self.group_headers)),
            uids[0] if uids else "",
            tuple(sorted((k, tuple(v)) for k, v in extra.items())),
        )


async def read_front_proxy(api: Kube) -> FrontProxy:
    """The front proxy's settings from the API server's ConfigMap (the gateway's ServiceAccount reads it through
    the standard Role ``extension-apiserver-authentication-reader`` in kube-system, which the chart binds)."""
    try:
        configmap = await api.get(CONFIGMAPS, CONFIGMAP_NAMESPACE, CONFIGMAP_NAME)
    except ApiError as error:
        fix = {
            403: "bind the Role extension-apiserver-authentication-reader in kube-system to the gateway's "
            "ServiceAccount (the chart does)",
            404: "the API server publishes none: API aggregation is not set up in this cluster",
        }.get(error.status, "the API server did not answer")
        raise FrontProxyUnavailable(
            f"cannot read ConfigMap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} ({error.status} {error.reason}): {fix}"
        ) from None
    return FrontProxy.of({str(k): str(v) for k, v in (configmap.get("data") or {}).items()})


def common_names(scope: Scope) -> tuple[str, ...] | None:
    """The common names of the client certificate TLS verified for this connection (the ASGI TLS extension, as
    :class:`~asynctask_operator.gateway.aggregation.VerifiedPeerProtocol` fills it); None without one."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    names = tls.get("client_common_names")
    return tuple(names) if isinstance(names, tuple | list) and tls.get("client_cert_error") is None else None


class FrontProxyOnly:
    """Serve a request only from the API server's front proxy, as the user its headers name (put in
    ``request.state.front_proxy_user``); 401 ``Status`` otherwise, before any route. Fails closed: a
    request whose connection carries no verified certificate (another server, a test client) is refused."""

    def __init__(self, app: ASGIApp, proxy: FrontProxy) -> None:
        self.app = app
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = common_names(scope)
        if names is None:
            why = "no verified client certificate: this port serves the Kubernetes API server's front proxy only"
        elif self.proxy.allowed_names and not set(names) & set(self.proxy.allowed_names):
            why = f"the client certificate's common name {', '.join(names) or '(none)'} is not in requestheader-allowed-names"
        else:
            user = self.proxy.user_of(scope.get("headers") or ())
            if user is not None:
                scope.setdefault("state", {})[USER_KEY] = user
                await self.app(scope, receive, send)
                return
            why = f"the front proxy named no user ({', '.join(self.proxy.username_headers)})"
        await apiobjects.status_response(401, why)(scope, receive, send)


def proxied_user(request: Request) -> User:
    """The user :class:`FrontProxyOnly` found for this request; 401 without one (nothing is served then)."""
    user = getattr(request.state, USER_KEY, None)
    if not isinstance(user, User):
        raise Problem(401, "no user: this port serves the Kubernetes API server's front proxy only")
    return user
