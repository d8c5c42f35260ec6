"""Memory of the session layer is bounded, however long the load (dissertation §6.3).

A manager's resident memory was seen to grow under sustained writes; the
session table was a suspect because it keeps answers for retries.  These
tests pin its bounds down: at most ``window`` answers per session, whatever
the number of commands, and only the sessions used within the last
``expire_after`` log indexes.  The table is counted from the snapshot (where
every retained answer must go, §7), so what is counted is what is kept.
"""

from __future__ import annotations

import random

import msgpack
from test_session import Counter

from raft.core.session import SessionStateMachine, encode_command, encode_register

WINDOW = 16  # what cluster.manager uses


def retained(sm: SessionStateMachine) -> dict[int, int]:
    """client id -> number of answers the session table keeps for it."""
    table = msgpack.unpackb(sm.snapshot(), strict_map_key=False)["sessions"]
    return {cid: len(answers) for cid, _last, _highest, _floor, answers in table}


def test_answers_stay_within_the_window_per_client_under_sustained_load():
    rng = random.Random(7)
    sm = SessionStateMachine(Counter(), expire_after=1_000_000, window=WINDOW)
    index = 0
    clients: dict[int, int] = {}  # client id -> next seq
    for _ in range(50):
        index += 1
        clients[sm.apply(index, encode_register())] = 1
    counts = []
    for _ in range(4):
        for _ in range(10_000):
            cid = rng.choice(list(clients))
            # Pipelined clients retry: seq is new, or one of the last WINDOW - 1.
            seq = max(1, clients[cid] - rng.randrange(WINDOW))
            clients[cid] = max(clients[cid], seq + 1)
            index += 1
            sm.apply(index, encode_command(cid, seq, b"1"))  # ack=0: nothing acknowledged
        kept = retained(sm)
        assert len(kept) == 50
        assert max(kept.values()) <= WINDOW
        counts.append(sum(kept.values()))
    # Full windows after 20,000 commands, and no more after 40,000.
    assert counts[1:] == [50 * WINDOW] * 3


def test_abandoned_sessions_are_dropped_after_expire_after_indexes():
    # A manager opens a new session with each leadership and never closes the
    # old one: those must not accumulate.
    expire_after = 500
    sm = SessionStateMachine(Counter(), expire_after=expire_after, window=WINDOW)
    index = 0
    for _ in range(200):
        index += 1
        cid = sm.apply(index, encode_register())
        for seq in range(1, 41):
            index += 1
            sm.apply(index, encode_command(cid, seq, b"1"))
    kept = retained(sm)
    # 200 sessions were opened; only those used in the last 500 indexes remain.
    assert len(kept) <= expire_after // 41 + 1
    assert all(last >= index - expire_after for last in sm.sessions.values())
    assert sum(kept.values()) <= len(kept) * WINDOW
