"""What each manager costs: the ``manager_count`` action.

For each cluster size it asks the driver for a fresh cluster and measures
there (`Driver.measure_costs`): how long a write takes to be acknowledged --
committed by a majority, each member's fsync included -- one client after
the other and several at once, and how long the cluster goes without a
leader after its leader is killed.  The rows (`ROWS_TABLE`) feed a figure,
the note's table and the checks; percentiles are computed here, once, so the
note, the figure and the checks print the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from scenarios.steps.actions import Action
from scenarios.steps.driver import Stage
from scenarios.steps.fields import ParseContext

__all__ = ["ROWS_TABLE", "ManagerCount", "percentile", "summarize"]

#: The `Stage.record` table the rows go to.
ROWS_TABLE = "manager_count"


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100): a value that was measured,
    never an interpolation.  None for no values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(1, math.ceil(q / 100 * len(ranked))) - 1]


def summarize(n: int, raw: dict[str, Any]) -> dict[str, Any]:
    """One row of the table from what the driver measured for ``n`` managers."""
    seq, conc, elections = raw["seq_ms"], raw["conc_ms"], raw["elections_s"]
    return {
        "managers": n,
        "quorum": n // 2 + 1,
        "tolerance": (n - 1) // 2,
        "seq_p50_ms": percentile(seq, 50),
        "seq_p99_ms": percentile(seq, 99),
        "conc_p50_ms": percentile(conc, 50),
        "conc_p99_ms": percentile(conc, 99),
        "election_p50_s": percentile(elections, 50),
        "election_max_s": max(elections, default=None),
        **raw,
    }


def _num(v: float | None, spec: str = ".1f") -> str:
    return "--" if v is None else format(v, spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerCount(Action):
    """For each size in ``sizes``: ``writes`` sequential writes, ``clients`` clients
    writing ``per_client`` each at once, and ``rounds`` leader kills (each killed
    leader restarted before the next round; none with one manager, which
    tolerates no failure)."""

    action: ClassVar[str] = "manager_count"
    driver_method: ClassVar[str] = "measure_costs"
    sizes: list[int] | None = None
    writes: int = 40
    clients: int = 4
    per_client: int = 10
    rounds: int = 3

    def validate(self, ctx: ParseContext) -> Self:
        for n in self.sizes or []:
            if not 1 <= n <= 9:
                ctx.fail("field 'sizes': each size must be between 1 and 9")
        for key in ("writes", "clients", "per_client"):
            if getattr(self, key) < 1:
                ctx.fail(f"field {key!r} must be at least 1")
        if self.rounds < 0:
            ctx.fail("field 'rounds' must not be negative")
        return self

    def apply(self, stage: Stage) -> str | None:
        sizes = self.sizes if self.sizes is not None else [1, 3, 5, 7, 9]
        settings = {"writes": self.writes, "clients": self.clients,
                    "per_client": self.per_client, "rounds": self.rounds}  # fmt: skip
        for n in sizes:
            row = summarize(n, stage.driver.measure_costs(n, settings))
            stage.record(ROWS_TABLE, row)
            stage.say(
                f"{n} managers: commit p50 {_num(row['seq_p50_ms'])} ms, "
                f"p99 {_num(row['seq_p99_ms'])} ms; {self.clients} clients p50 "
                f"{_num(row['conc_p50_ms'])} ms; CPU {row['cpu_ms_per_write']:.2f} ms/write; "
                f"new leader p50 {_num(row['election_p50_s'], '.2f')} s"
            )
        return f"{len(sizes)} cluster sizes measured"
