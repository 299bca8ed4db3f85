"""The gateway's TLS certificates, loaded again when their files change: a renewal needs no restart
(docs/adr/0031-certificates-reloaded-in-place.md).

cert-manager renews a certificate into its Secret, and the kubelet updates the mounted files within
a minute or so (all at once: it swaps a symlink). uvicorn reads them once, into one SSL context per
port; :class:`CertificateReloader` keeps each context and, every :data:`CHECK_SECONDS`, compares the
files with what it serves. A changed pair is first loaded into a scratch context, from a private
copy of the bytes it read: only a certificate and key that belong together reach the serving
context, and exactly those bytes (OpenSSL drops a context's certificate when it is given a key that
does not match it, so the serving context is never the place to find out). New connections get the
new certificate; open ones keep theirs. A pair that does not load (the key of another certificate,
a file half written) is said once in the log and the previous one served on.

The aggregation port's client CA (the API server's front-proxy CA, read from the cluster at start)
is not reloaded: rotating that CA needs a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import pathlib
import ssl
import tempfile
from collections.abc import Awaitable, Callable

import uvicorn

logger = logging.getLogger(__name__)

CHECK_SECONDS = 30.0
"""How often the files are compared with what is served (the kubelet takes up to ~1 min to update them)."""


def _read(certfile: str, keyfile: str | None) -> tuple[bytes, bytes | None] | None:
    try:
        return pathlib.Path(certfile).read_bytes(), pathlib.Path(keyfile).read_bytes() if keyfile else None
    except OSError:
        return None  # between two writes, or gone for a moment: the next check sees it


def _digest(pair: tuple[bytes, bytes | None]) -> bytes:
    cert, key = pair
    return hashlib.sha256(cert + b"\0" + (key or b"")).digest()


@dataclasses.dataclass
class ServedCertificate:
    """One port's certificate: its files, the context that serves it, and the digest of what it serves."""

    flag: str
    certfile: str
    keyfile: str | None
    context: ssl.SSLContext
    serving: bytes
    refused: bytes | None = None

    def check(self) -> bool:
        """Load the files into the serving context if they changed and load whole; whether it did."""
        pair = _read(self.certfile, self.keyfile)
        if pair is None:
            return False
        digest = _digest(pair)
        if digest in (self.serving, self.refused):
            return False
        with tempfile.TemporaryDirectory(prefix="asynctask-gateway-tls-") as folder:  # 0700: this process's alone
            cert = pathlib.Path(folder) / "tls.crt"
            cert.write_bytes(pair[0])
            key = None
            if pair[1] is not None:
                key = pathlib.Path(folder) / "tls.key"
                key.write_bytes(pair[1])
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
            except (ssl.SSLError, ValueError) as exc:
                self.refused = digest
                logger.warning(
                    "%s: the changed certificate was not loaded (%s); still serving the previous one",
                    self.flag, exc,
                )  # fmt: skip
                return False
            self.context.load_cert_chain(cert, key)
        self.serving, self.refused = digest, None
        logger.info("%s: loaded the changed certificate from %s; new connections get it", self.flag, self.certfile)
        return True


class CertificateReloader:
    """Every TLS port's :class:`ServedCertificate`, made as uvicorn builds its SSL context."""

    def __init__(self) -> None:
        self.served: list[ServedCertificate] = []

    def factory(self, flag: str) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
        """A ``uvicorn.Config(ssl_context_factory=...)``: uvicorn's own context, kept to be reloaded."""

        def make(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
            assert config.ssl_certfile is not None
            certfile, keyfile = str(config.ssl_certfile), str(config.ssl_keyfile) if config.ssl_keyfile else None
            pair = _read(certfile, keyfile)
            context = default()  # reads the files itself: a failure here is the start's
            serving = _digest(pair) if pair is not None else b""
            self.served.append(ServedCertificate(flag, certfile, keyfile, context, serving))
            return context

        return make

    def check(self) -> int:
        """Each port's files compared with what it serves, reloaded where they changed; how many were."""
        return sum(served.check() for served in self.served)

    async def run(
        self, interval: float | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Check every ``interval`` seconds (:data:`CHECK_SECONDS`) until cancelled."""
        while True:
            await sleep(CHECK_SECONDS if interval is None else interval)
            self.check()
