"""Where the operator's credentials come from: in-cluster (a pod's service account) or a kubeconfig.

:func:`load_configuration` gives the official client's configuration, which
:class:`~asynctask_operator.adapters.kubeclient.KubeClient` uses; :func:`credentials` reads the same
configuration in the form kopf's login wants, so that both log in the same way.

A kubeconfig with ``insecure-skip-tls-verify`` (common in development clusters) is said once, here,
in the process's log (:func:`said_once_if_insecure`): urllib3 would warn on every request, as raw
text between the JSON lines of the operator and the gateway, and through the kubectl plugin's live
progress row. The operator, the gateway and the plugin all load their configuration here.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
import warnings
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3.exceptions

logger = logging.getLogger(__name__)

_SAID_INSECURE: set[str] = set()
"""The API servers whose unverified certificate this process has said (once each)."""


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> kubernetes.client.Configuration:
    """In-cluster credentials when running in a pod (and no kubeconfig is given), else the kubeconfig."""
    config = kubernetes.client.Configuration()
    if kubeconfig is None and context is None:
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
            return config
        except kubernetes.config.ConfigException:
            pass
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=config
    )
    said_once_if_insecure(config)
    return config


def said_once_if_insecure(config: kubernetes.client.Configuration) -> None:
    """When ``config`` does not verify the API server's certificate: one warning in this process's log,
    the first time, and none of urllib3's ``InsecureRequestWarning`` (one per request) for that host.

    Only that host's warnings are silenced: any other unverified request still says so."""
    if config.verify_ssl:
        return
    host = urllib.parse.urlsplit(str(config.host)).hostname or ""
    warnings.filterwarnings(
        "ignore",
        message=re.escape(f"Unverified HTTPS request is being made to host '{host}'"),
        category=urllib3.exceptions.InsecureRequestWarning,
    )
    if config.host in _SAID_INSECURE:
        return
    _SAID_INSECURE.add(config.host)
    logger.warning(
        "TLS verification is off for %s (insecure-skip-tls-verify in the kubeconfig): the API server's "
        "certificate is not checked. Said once, not for every request.",
        config.host,
    )


def credentials(config: kubernetes.client.Configuration) -> dict[str, Any]:
    """What kopf's login needs, read from a loaded client configuration (same fields as kopf.ConnectionInfo)."""
    hook = getattr(config, "refresh_api_key_hook", None)
    if hook is not None:  # exec plugins and expiring tokens refresh here
        hook(config)
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return {
        "server": config.host,
        "ca_path": config.ssl_ca_cert,
        "insecure": not config.verify_ssl,
        "username": config.username or None,
        "password": config.password or None,
        "scheme": scheme,
        "token": token,
        "certificate_path": config.cert_file,
        "private_key_path": config.key_file,
    }


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace kubectl would use: the context's, else the pod's own (in-cluster), else ``default``."""
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError):
        contexts, active = [], None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    if namespace:
        return str(namespace)
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as file:
            return file.read().strip() or "default"
    except OSError:
        return "default"
