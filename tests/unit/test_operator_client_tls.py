"""The operator's own HTTP client (adapters/aiokube.py) speaks to an API server as the official client
would, from the same kubeconfig or in a pod: the cluster's CA verified, a client certificate presented,
a bearer token sent (in a pod, the rotated one once the file changes), ``tls-server-name`` honoured,
and an API server it cannot verify refused rather than trusted.

The fake API server of the other tiers speaks plain HTTP; here a stand-in serves HTTPS with
certificates of a throwaway CA (trustme) and requires a client certificate where a real API server
would (tests/support/tlsapi.py).
"""

from __future__ import annotations

import base64
import datetime
import pathlib
import types
from collections.abc import Iterator
from typing import Any, cast

import pytest
import trustme
import yaml
from kubernetes.config import incluster_config

from asynctask_operator.adapters.aiokube import AioKubeClient
from asynctask_operator.adapters.kube import PODS, ApiError
from asynctask_operator.adapters.kubeclient import RetryPolicy
from asynctask_operator.adapters.kubeconfig import load_configuration
from tests.support.tlsapi import PAGES, TlsApiServer

ONCE = RetryPolicy(attempts=1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(path: pathlib.Path, url: str, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    """A kubeconfig as kind and kubeadm write them: credentials inline, base64."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": url, **cluster}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return str(path)


@pytest.fixture(scope="module")
def cluster_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def api(cluster_ca: trustme.CA, client_ca: trustme.CA) -> Iterator[TlsApiServer]:
    with TlsApiServer(cluster_ca, client_ca=client_ca) as server:
        yield server


def trusted(ca: trustme.CA) -> dict[str, Any]:
    return {"certificate-authority-data": b64(ca.cert_pem.bytes())}


def certificate_of(ca: trustme.CA, name: str) -> dict[str, Any]:
    leaf = ca.issue_cert(f"{name}@users.example", common_name=name)
    return {
        "client-certificate-data": b64(leaf.cert_chain_pems[0].bytes()),
        "client-key-data": b64(leaf.private_key_pem.bytes()),
    }


async def listed(path: str) -> list[dict[str, Any]]:
    client = AioKubeClient(load_configuration(path), retry=ONCE)
    try:
        return await client.list_objects(PODS, "default")
    finally:
        await client.aclose()


async def test_a_client_certificate_and_the_clusters_ca(
    api: TlsApiServer, cluster_ca: trustme.CA, client_ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    path = kubeconfig(tmp_path / "config", api.url, trusted(cluster_ca), certificate_of(client_ca, "kind-admin"))
    assert await listed(path) == []
    assert len(api.seen) == PAGES  # every page of the listing, on a verified connection
    assert {(s.client_cn, s.authorization) for s in api.seen} == {("kind-admin", None)}


async def test_a_bearer_token_with_the_certificate(
    api: TlsApiServer, cluster_ca: trustme.CA, client_ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    user = {**certificate_of(client_ca, "sa"), "token": "t0ken"}
    assert await listed(kubeconfig(tmp_path / "config", api.url, trusted(cluster_ca), user)) == []
    assert {(s.client_cn, s.authorization) for s in api.seen} == {("sa", "Bearer t0ken")}


class LoaderClock:
    """The official in-cluster loader's clock (it re-reads the token file once its minute is past)."""

    def __init__(self) -> None:
        self.ahead = datetime.timedelta(0)
        clock = self

        class _DateTime(datetime.datetime):
            @classmethod
            def now(cls, tz: datetime.tzinfo | None = None) -> _DateTime:
                return cast(_DateTime, datetime.datetime.now(tz) + clock.ahead)

        self.module = types.SimpleNamespace(datetime=_DateTime, timedelta=datetime.timedelta)


async def test_in_a_pod_a_rotated_service_account_token_is_sent_once_the_file_changes(
    cluster_ca: trustme.CA, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In cluster, the kubelet rewrites the projected token before it expires; the official client's
    hook re-reads the file each minute, and the operator's client asks for the credentials at each
    request, so it sends the new token from then on (an old one is refused once it expires)."""
    token, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("first")
    ca_file.write_bytes(cluster_ca.cert_pem.bytes())
    clock = LoaderClock()
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca_file))
    monkeypatch.setattr(incluster_config, "datetime", clock.module)
    with TlsApiServer(cluster_ca) as api:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.server_address[1]))
        client = AioKubeClient(load_configuration(), retry=ONCE)
        try:
            await client.list_objects(PODS, "default")
            token.write_text("second")  # the kubelet rotates it
            await client.list_objects(PODS, "default")  # within the minute: the token read before
            clock.ahead = datetime.timedelta(minutes=2)
            await client.list_objects(PODS, "default")
        finally:
            await client.aclose()
    tokens = [s.authorization for s in api.seen]
    assert tokens == ["bearer first"] * (2 * PAGES) + ["bearer second"] * PAGES


async def test_tls_server_name_is_the_name_verified(
    cluster_ca: trustme.CA, client_ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    """An API server reached by address whose certificate names it otherwise (``tls-server-name``)."""
    with TlsApiServer(cluster_ca, client_ca=client_ca, names=("api.cluster.internal",)) as api:
        user = certificate_of(client_ca, "admin")
        named = {**trusted(cluster_ca), "tls-server-name": "api.cluster.internal"}
        assert await listed(kubeconfig(tmp_path / "named", api.url, named, user)) == []
        with pytest.raises(ApiError) as refused:  # the same server without the name: 127.0.0.1 is not in it
            await listed(kubeconfig(tmp_path / "unnamed", api.url, trusted(cluster_ca), user))
    assert refused.value.status == 0 and "certificate" in str(refused.value).lower()


@pytest.mark.parametrize(
    ("cluster", "why"),
    [
        pytest.param({}, "certificate", id="no-ca-given"),
        pytest.param("other-ca", "certificate", id="another-ca"),
    ],
)
async def test_an_api_server_it_cannot_verify_is_refused_not_trusted(
    api: TlsApiServer, client_ca: trustme.CA, tmp_path: pathlib.Path, cluster: Any, why: str
) -> None:
    given = trusted(trustme.CA()) if cluster == "other-ca" else cluster
    path = kubeconfig(tmp_path / "config", api.url, given, certificate_of(client_ca, "admin"))
    with pytest.raises(ApiError) as refused:
        await listed(path)
    assert refused.value.status == 0 and why in str(refused.value).lower()
    assert api.seen == []  # nothing was sent over a connection it could not verify


async def test_without_the_client_certificate_the_handshake_fails(
    api: TlsApiServer, cluster_ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    path = kubeconfig(tmp_path / "config", api.url, trusted(cluster_ca), {"token": "t"})
    with pytest.raises(ApiError) as refused:
        await listed(path)
    assert refused.value.status == 0
    assert api.seen == []
