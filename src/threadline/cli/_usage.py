"""Token usage of one chat process, turn by turn, for ``/usage``."""

from __future__ import annotations

import dataclasses
from typing import TextIO

from ..usage import Usage
from ._render import print_table

__all__ = ["UsageLog"]

SHOWN_TURNS = 10


class UsageLog:
    """The usage of each turn this chat sent (as the endpoint reported it) and their sum."""

    def __init__(self) -> None:
        self.turns: list[Usage] = []
        self.total = Usage()

    def record(self, usage: Usage) -> None:
        """Keep one completed turn's usage."""
        self.turns.append(dataclasses.replace(usage))
        self.total.add(usage)

    def print(self, out: TextIO) -> None:
        """A table of the last turns and the totals of this chat process."""
        if not self.turns:
            print("no turns yet in this chat; /usage shows token usage after a reply", file=out)
            return
        first = max(0, len(self.turns) - SHOWN_TURNS)
        rows: list[tuple[object, ...]] = [
            (number, u.requests, u.input_tokens, u.output_tokens, u.total_tokens)
            for number, u in enumerate(self.turns[first:], start=first + 1)
        ]
        t = self.total
        rows.append(("total", t.requests, t.input_tokens, t.output_tokens, t.total_tokens))
        print_table(["turn", "requests", "input", "output", "total"], rows, out)
        if first:
            print(f"(turns 1-{first} are counted in the total)", file=out)
        if t.requests and not t.total_tokens:
            print("(the endpoint reported no token counts)", file=out)
