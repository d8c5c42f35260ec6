"""`cluster.client.http`: statuses, bodies, and whether a request may have been sent."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cluster.client.http import ApiError, Unreachable, exchange, fetch, request


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(2.0)
        status = 409 if self.path == "/conflict" else 200
        body = json.dumps({"message": "version conflict"} if status == 409 else {"ok": 1})
        self.send_response(status)
        self.send_header("X-Swarmraft-Served-By", "manager2")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_exchange_returns_any_status_with_its_headers(server: str) -> None:
    answer = exchange("GET", f"{server}/conflict")
    assert answer.status == 409 and answer.json() == {"message": "version conflict"}
    assert answer.headers["X-Swarmraft-Served-By"] == "manager2"


def test_request_raises_the_apis_message(server: str) -> None:
    assert request("GET", f"{server}/x") == {"ok": 1}
    with pytest.raises(ApiError) as e:
        request("GET", f"{server}/conflict")
    assert (e.value.status, e.value.message) == (409, "version conflict")
    assert fetch(f"{server}/x") == b'{"ok": 1}'


def test_a_refused_connection_was_not_sent_a_timeout_may_have_been(server: str) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(Unreachable) as refused:
        exchange("GET", f"http://127.0.0.1:{port}/")
    assert refused.value.sent is False
    with pytest.raises(Unreachable) as slow:
        exchange("GET", f"{server}/slow", timeout=0.2)
    assert slow.value.sent is True
