"""The report-token key: one Secret shared by every replica and restart."""

from __future__ import annotations

import base64
import logging
import secrets

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import SECRETS, Conflict, NotFound
from asynctask_operator.core.naming import MANAGER

logger = logging.getLogger(__name__)


async def load_report_key(api: Kube, namespace: str, name: str) -> bytes:
    """The HMAC key of report tokens.

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
