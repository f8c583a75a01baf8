"""A TCP relay on loopback that counts the bytes a client sends to a server."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class CountingProxy:
    """Relays 127.0.0.1:<port> to *target*; ``sent`` counts client→server bytes,
    ``sent_by_connection`` the same for each connection relayed, in the order accepted.

    With *limit*, connections beyond the first *limit* are closed as soon as
    they are accepted, as a server or firewall limiting connections would.
    """

    def __init__(self, target_host: str, target_port: int, limit: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.limit = limit
        self.accepted = 0
        self.sent_by_connection: list[int] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.limit is not None and self.accepted > self.limit:
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                number = len(self.sent_by_connection)
                self.sent_by_connection.append(0)
            threading.Thread(target=self._pump, args=(client, server, number), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: int | None) -> None:
        """Copy *src* to *dst*; *outbound* is the connection's number when *src* is the client."""
        try:
            while chunk := src.recv(65536):
                if outbound is not None:
                    with self._lock:
                        self.sent_by_connection[outbound] += len(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    @property
    def sent(self) -> int:
        """Client→server bytes over every connection."""
        with self._lock:
            return sum(self.sent_by_connection)

    def reset(self) -> None:
        with self._lock:
            self.sent_by_connection = [0] * len(self.sent_by_connection)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
