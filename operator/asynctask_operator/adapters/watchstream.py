"""One watch response, read line by line in a thread of its own, its events handed to the event loop.

The thread reads at most :data:`WATCH_BUFFER` events ahead of the consumer; closing the stream
unblocks the thread's read at once and returns the connection to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import urllib3.exceptions

WATCH_BUFFER = 256  # watch events read ahead of the consumer; the reading thread waits beyond that
READ_SIZE = 65536  # the most a watch stream's reader takes from the socket at once


class StreamBroken(Exception):
    """The stream failed after it opened: a dropped connection, a read timeout, a line that is not JSON."""


class WatchStream:
    """One watch response, read in a thread; its events handed to the event loop, a bounded few ahead."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, decode: Callable[[bytes], Any] = json.loads, *, blank_lines: bool = False
    ) -> None:
        self._loop = loop
        self._decode = decode  # a watch's lines are JSON events; a pod log's are text
        self._blank_lines = blank_lines  # a log keeps its empty lines; a watch has none that mean anything
        self.opened: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._room = threading.Semaphore(WATCH_BUFFER)
        self._closed = threading.Event()
        self._response: Any = None

    def run(self, open_: Callable[[], Any]) -> None:
        try:
            try:
                response = open_()
            except kubernetes.client.ApiException as exc:
                self._call(self._resolve, int(exc.status or 0), str(exc.body or exc.reason or "").encode())
                return
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                self._call(self._resolve, 0, str(exc).encode())
                return
            self._response = response
            if self._closed.is_set():  # closed while connecting: nobody will read this stream
                return
            if not 200 <= response.status < 300:  # the connection goes back to the pool below
                self._call(self._resolve, response.status, response.data or b"")
                return
            self._call(self._resolve, response.status, b"")
            for line in lines(response, blank_lines=self._blank_lines):
                if self._closed.is_set():
                    break
                event = self._decode(line)
                while not self._room.acquire(timeout=1.0):  # the consumer is behind: wait for it
                    if self._closed.is_set():
                        return
                self._call(self._events.put_nowait, event)
            self._call(self._events.put_nowait, None)
        except Exception as exc:  # a dropped connection, a read timeout, a line that is not JSON
            if not self._closed.is_set():
                self._call(self._events.put_nowait, exc)
        finally:
            with contextlib.suppress(Exception):
                if self._response is not None:
                    self._response.release_conn()

    def _resolve(self, status: int, data: bytes) -> None:
        if not self.opened.done():
            self.opened.set_result((status, data))

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self._loop.call_soon_threadsafe(fn, *args)

    async def next(self) -> Any:
        item = await self._events.get()
        if isinstance(item, BaseException):
            raise StreamBroken(str(item) or type(item).__name__) from item
        if item is not None:
            self._room.release()
        return item

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()  # unblocks the thread's read at once


def lines(response: Any, *, blank_lines: bool = False) -> Iterator[bytes]:
    """The non-empty lines (every line, with ``blank_lines``) of a streamed response body, as they arrive.

    ``read1`` returns what has arrived, chunked or not (``stream()`` would wait for 64 KiB or
    the end of a body sent without chunked encoding, as some proxies send it)."""
    buffer = b""
    while chunk := response.read1(READ_SIZE):
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line, buffer = buffer[:end], buffer[end + 1 :]
            if blank_lines or line.strip():
                yield line
    if buffer.strip():
        yield buffer
