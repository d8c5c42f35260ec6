"""Fuzz the swarm port: no input gets a 500, a hang, or a node it was refused.

The swarm port (`cluster.api.swarm`) is the one listener that takes
requests from nodes that have no certificate yet, so its join route is
where a stranger's bytes arrive.  Hypothesis sends it random bodies (random
bytes, JSON of every type, join requests with one field swapped for a wrong
value, real tokens with the wrong role, garbage signing requests) and random
calls to the dispatcher routes without a certificate, over the fake manager
of `tests.api_fakes` (plain HTTP: TLS itself is tested on real processes).

For every answer: it came within `REQUEST_BOUND` seconds; its status is below
500; an error has the API's body ``{"message": str}``; and after an error the
store is exactly what it was (no half-joined node).

Every example starts from the same freshly bootstrapped store
(`Harness.fresh`), so a failing example replays alone and shrinks.

``FUZZ_EXAMPLES`` examples per test (default 200); for a long run::

    FUZZ_EXAMPLES=20000 python -m pytest tests/cluster/api/test_swarm_port_fuzz.py -s
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_fakes import SwarmBackend, bootstrap
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.api.swarm import make_swarm_app
from cluster.security.pki import make_csr

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
REQUEST_BOUND = 5.0
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=REQUEST_BOUND * 1000 * 2,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GOOD_CSR = make_csr(ec.generate_private_key(ec.SECP256R1())).decode()


class Harness:
    """One event loop and the swarm app over a bootstrapped fake leader.

    `fresh` gives every example a newly bootstrapped store and server: a node
    one example joined must not be there for the next, or Hypothesis could
    neither replay a failure nor shrink it.
    """

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.client: TestClient | None = None
        self.tried: Counter[str] = Counter()
        self.fresh()

    def fresh(self) -> Harness:
        if self.client is not None:
            self.runner.run(self.client.close())
        self.backend = bootstrap(SwarmBackend())
        #: The same in every fresh store: `bootstrap` draws them from a fixed seed.
        self.tokens = self.backend.store.cluster()["JoinTokens"]
        self.runner.run(self._start())
        return self

    async def _start(self) -> None:
        self.client = TestClient(TestServer(make_swarm_app(self.backend)))
        await self.client.start_server()

    def close(self) -> None:
        try:
            if self.client is not None:
                self.runner.run(self.client.close())
        finally:
            self.runner.close()

    def state(self) -> Any:
        doc = msgpack.unpackb(self.backend.store.snapshot(), raw=False)
        doc.pop("AppliedIndex")
        return doc

    async def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, str]:
        assert self.client is not None
        async with (
            asyncio.timeout(REQUEST_BOUND),
            self.client.request(method, path, data=body) as resp,
        ):
            return resp.status, await resp.read(), resp.content_type

    def check(self, method: str, path: str, body: bytes | None) -> int:
        before = self.state()
        try:
            status, payload, ctype = self.runner.run(self._send(method, path, body))
        except TimeoutError:
            pytest.fail(f"{method} {path} did not answer within {REQUEST_BOUND}s")
        self.tried[str(status)] += 1
        assert status < 500, (status, method, path, payload[:300])
        if status >= 400:
            assert ctype == "application/json", (status, ctype, payload[:200])
            doc = json.loads(payload)
            assert isinstance(doc, dict) and set(doc) == {"message"}, doc
            assert isinstance(doc["message"], str) and doc["message"]
            assert self.state() == before, (status, path, payload[:300])
        return status


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        h.close()
        print(f"\nfuzz_swarm_api: {sum(h.tried.values())} requests, by status {dict(h.tried)}")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ("JoinToken", "CSR", "Hostname", "Role", "Endpoints")
ROLES = st.sampled_from(["worker", "manager", "root", "", "Worker"])
ENDPOINTS = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "Raft": st.sampled_from(["127.0.0.1:7004", "nohost", ":1", "h:99999", "h:x"]),
            "API": st.one_of(st.text(max_size=20), st.integers()),
            "Swarm": st.text(max_size=20),
        }
    ),
)


@st.composite
def join_bodies(draw: st.DrawFn, tokens: dict[str, str]) -> bytes:
    """A join request that is right but for a few values (or not a request at all)."""
    kind = draw(st.sampled_from(["bytes", "json", "almost"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    body: dict[str, Any] = {
        "JoinToken": draw(st.sampled_from([tokens["Worker"], tokens["Manager"], "SWMTKN-1-x"])),
        "CSR": draw(st.sampled_from([GOOD_CSR, GOOD_CSR[:80], "", "x" * 5000])),
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        body[name] = draw(
            {"Role": ROLES, "Endpoints": ENDPOINTS, "Hostname": st.text(max_size=70)}.get(
                name, JSON
            )
        )
    if draw(st.booleans()):
        body[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    return json.dumps(body).encode()


@FUZZ
@given(data=st.data())
def test_join_requests_get_clean_answers(harness: Harness, data: st.DataObject) -> None:
    body = data.draw(join_bodies(harness.fresh().tokens))
    harness.check("POST", "/join", body)


@FUZZ
@given(
    route=st.sampled_from(
        [
            ("POST", "/dispatcher/register"),
            ("POST", "/dispatcher/heartbeat"),
            ("GET", "/dispatcher/assignments"),
            ("POST", "/dispatcher/tasks/x/status"),
            ("GET", "/ca"),
            ("GET", "/nope"),
            ("DELETE", "/join"),
        ]
    ),
    body=st.one_of(st.none(), st.binary(max_size=100), JSON.map(lambda v: json.dumps(v).encode())),
)
def test_calls_without_a_certificate_are_refused_cleanly(
    harness: Harness, route: tuple[str, str], body: bytes | None
) -> None:
    method, path = route
    status = harness.fresh().check(method, path, body)
    if path.startswith("/dispatcher"):
        # No certificate, no dispatcher: refused before the body is even read.
        assert status == 401, (status, path)
