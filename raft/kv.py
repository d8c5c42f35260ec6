"""A tiny replicated key-value store, and the control endpoint to reach it.

`KVStateMachine` is the built-in `StateMachine` that tests, the benchmark and
``python -m raft.kv`` replicate.  Commands are msgpack arrays:

    ["set", key, value]            -> None
    ["cas", key, expected, new]    -> True if the value was ``expected`` (None: absent)
    ["del", key]                   -> True if the key existed

Keys are strings, values bytes.  Apply is deterministic (§2: every replica
applies the same commands in the same order and reaches the same state).

`ControlServer` exposes a running `RaftNode` on 127.0.0.1 for tests, the
benchmark and the cluster supervisor: length-prefixed msgpack requests
``[id, op, args]`` answered by ``[id, ok, value]``, where a failure's value is
``[kind, detail]`` with kind one of ``not_leader`` (detail: the leader's id
or None), ``timeout``, ``lost``, ``stopped``, ``dropped``, ``error``.  Requests on one
connection are served concurrently (pipelining: the benchmark keeps 64 in
flight on one socket) and answered as they complete.  Ops: ``status``,
``propose`` {data, timeout}, ``get`` {key, linearizable, timeout}, ``faults``
{rules?}, ``transfer`` {target?}.  `ControlClient` is the matching client.

`main` / `serve` run both as the process ``python -m raft.kv`` starts.  This is a
test and benchmark tool, not the Swarm API (that is ``cluster/``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import msgpack

from raft.core.protocol import NotLeader, ProposalDropped
from raft.runtime import eventloop
from raft.runtime.node import NodeSettings, NodeStopped, ProposalLost, ProposalTimeout, RaftNode

logger = logging.getLogger("raft.kv")

__all__ = [
    "ControlClient",
    "ControlError",
    "ControlServer",
    "KVStateMachine",
    "encode_cas",
    "encode_delete",
    "encode_set",
    "main",
    "serve",
]

_LEN = struct.Struct(">I")
_MAX_FRAME = 16 << 20


# ==================================================================== state machine


def encode_set(key: str, value: bytes) -> bytes:
    return msgpack.packb(["set", key, value])


def encode_cas(key: str, expected: bytes | None, new: bytes) -> bytes:
    return msgpack.packb(["cas", key, expected, new])


def encode_delete(key: str) -> bytes:
    return msgpack.packb(["del", key])


class KVStateMachine:
    """A dict of str -> bytes, changed only by committed commands."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.applied_index = 0

    def apply(self, index: int, data: bytes) -> Any:
        cmd = msgpack.unpackb(data)
        self.applied_index = index
        op = cmd[0]
        if op == "set":
            self.data[cmd[1]] = cmd[2]
            return None
        if op == "cas":
            _, key, expected, new = cmd
            if self.data.get(key) != expected:
                return False
            self.data[key] = new
            return True
        if op == "del":
            return self.data.pop(cmd[1], None) is not None
        raise ValueError(f"unknown kv command {op!r}")

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def snapshot(self) -> bytes:
        return msgpack.packb([self.applied_index, self.data])

    def restore(self, data: bytes) -> None:
        self.applied_index, self.data = msgpack.unpackb(data)

    @staticmethod
    def op_kind(data: bytes) -> str:
        return str(msgpack.unpackb(data)[0])


# ==================================================================== control endpoint


class ControlError(Exception):
    """A failed control request; ``kind`` as in the module docstring."""

    def __init__(self, kind: str, detail: Any) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if size > _MAX_FRAME:
        raise ValueError(f"control frame of {size} bytes")
    return msgpack.unpackb(await reader.readexactly(size))


def _frame(obj: Any) -> bytes:
    body = msgpack.packb(obj)
    return _LEN.pack(len(body)) + body


class ControlServer:
    """Serves one `RaftNode` (and its `KVStateMachine`) to local clients."""

    def __init__(
        self, node: RaftNode, kv: KVStateMachine, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.node = node
        self.kv = kv
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._supervisor = asyncio.create_task(self._supervise(ready), name="control")
        await ready.wait()
        self._server = await asyncio.start_server(self._on_accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, timeout: float = 2.0) -> None:
        if self._server is not None:
            self._server.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor}, timeout=timeout)
        self._group = None

    async def _supervise(self, ready: asyncio.Event) -> None:
        # Owns every connection task and every request task.
        async with asyncio.TaskGroup() as group:
            self._group = group
            ready.set()
            await asyncio.Future()  # until stop() cancels us

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._group is None:
            writer.transport.abort()
            return
        self._group.create_task(self._serve(reader, writer))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while self._group is not None:
                req_id, op, args = await _read_frame(reader)
                # Answered concurrently, in completion order (pipelining).
                self._group.create_task(self._answer(writer, req_id, op, args))
        except (OSError, asyncio.IncompleteReadError, ValueError, TypeError):
            pass  # the client went away or spoke nonsense: drop it
        except Exception:
            logger.exception("control connection failed")
        finally:
            writer.transport.abort()

    async def _answer(self, writer: asyncio.StreamWriter, req_id: int, op: str, args: Any) -> None:
        try:
            value = await self._dispatch(op, args or {})
            reply = [req_id, True, value]
        except NotLeader as exc:
            reply = [req_id, False, ["not_leader", exc.leader]]
        except ProposalTimeout as exc:
            reply = [req_id, False, ["timeout", str(exc)]]
        except ProposalLost as exc:
            reply = [req_id, False, ["lost", str(exc)]]
        except NodeStopped as exc:
            reply = [req_id, False, ["stopped", str(exc)]]
        except ProposalDropped as exc:  # a leadership transfer is under way: retry soon
            reply = [req_id, False, ["dropped", str(exc)]]
        except Exception as exc:
            reply = [req_id, False, ["error", repr(exc)]]
        try:
            data = _frame(reply)
        except (TypeError, ValueError) as exc:  # a result msgpack cannot carry
            data = _frame([req_id, False, ["error", f"unencodable result: {exc}"]])
        if not writer.is_closing():
            writer.write(data)

    async def _dispatch(self, op: str, args: dict[str, Any]) -> Any:
        node = self.node
        if op == "status":
            return node.status()
        if op == "propose":
            return await node.propose(args["data"], args.get("timeout"))
        if op == "get":
            if args.get("linearizable", True):
                await node.read_index(args.get("timeout"))
            return self.kv.get(args["key"])
        if op == "faults":
            if args.get("rules") is not None:
                node.fault_filter.replace(args["rules"])
            return node.fault_filter.to_dict()
        if op == "transfer":
            return node.transfer_leadership(args.get("target"))
        raise ValueError(f"unknown control op {op!r}")


class ControlClient:
    """Talks to a `ControlServer`; many calls may be in flight at once.

    Use as ``async with ControlClient(host, port) as c: await c.call("status")``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ControlClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._reader_task = asyncio.create_task(self._read_replies(reader))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.wait({self._reader_task}, timeout=1.0)
        self._fail_calls(ConnectionError("control connection closed"))

    async def call(self, op: str, timeout: float = 10.0, **args: Any) -> Any:
        """Send one request and wait (at most ``timeout``) for its answer."""
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("not connected")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[req_id] = fut
        self._writer.write(_frame([req_id, op, args]))
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._calls.pop(req_id, None)

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                req_id, ok, value = await _read_frame(reader)
                fut = self._calls.pop(req_id, None)
                if fut is None or fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(ControlError(value[0], value[1]))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._fail_calls(ConnectionError(f"control connection lost: {exc!r}"))

    def _fail_calls(self, exc: Exception) -> None:
        for fut in self._calls.values():
            if not fut.done():
                fut.set_exception(exc)
        self._calls.clear()


# ==================================================================== process


async def serve(settings: NodeSettings, control: tuple[str, int]) -> int:
    """Run one KV node with its control endpoint until SIGTERM/SIGINT (`raft.kv.main`).

    Writes ``DATA_DIR/node.json`` (pid, ports) once serving, so a supervisor or
    a test learns the ports it picked.  Returns the process exit status.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sm = KVStateMachine()
    node = RaftNode(settings, sm)
    await node.start()
    server = ControlServer(node, sm, *control)
    await server.start()
    info = {
        "pid": os.getpid(),
        "id": settings.id,
        "raft_port": node.raft_port,
        "control_host": control[0],
        "control_port": server.port,
    }
    path = Path(settings.data_dir) / "node.json"
    path.with_suffix(".tmp").write_text(json.dumps(info))
    os.replace(path.with_suffix(".tmp"), path)
    waits = {asyncio.create_task(stop.wait()), asyncio.create_task(node.wait_stopped())}
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    await asyncio.wait(waits)
    logger.info("%s: stopping", settings.id)
    try:
        async with asyncio.timeout(settings.stop_timeout + 2):
            await server.stop()
            await node.stop()
    except TimeoutError:
        logger.error("%s: graceful stop timed out", settings.id)
        return 1
    return 1 if node.failure is not None else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m raft.kv --config FILE.json``: one node of the built-in KV store.

    The config file holds the `NodeSettings` fields plus optional
    ``control_host``/``control_port`` (the endpoint of `raft.kv.ControlServer`;
    port 0 picks a free one) and ``log_level``.  Once serving, the node writes
    ``DATA_DIR/node.json`` with its pid and ports.  SIGTERM or SIGINT stops it
    gracefully; the exit status is 0 after a clean stop, 1 if the node failed.
    """
    parser = argparse.ArgumentParser(prog="python -m raft.kv", description=main.__doc__)
    parser.add_argument("--config", required=True, help="JSON file of node settings")
    args = parser.parse_args(argv)
    try:
        raw = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as exc:
        print(f"raft.kv: cannot read config: {exc}", file=sys.stderr)
        return 2
    control = (raw.pop("control_host", "127.0.0.1"), int(raw.pop("control_port", 0)))
    level = raw.pop("log_level", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = NodeSettings.from_dict(raw)
        return eventloop.run(serve(settings, control))
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a bad config, a busy port
        logger.error("cannot run node: %s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
