"""Choosing an instruction for an instance and placing it as the seed's rows do.

The choice is a seeded hash of the instance id, so a rerun picks the same instruction and
neighbouring instances pick different ones. ``definition`` and ``instruction_id`` stay in their
own columns; ``prompt`` is the seed's ``input`` field (instruction and input together), so
instructions can be resampled later without rebuilding the inputs.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from kositp.reformat.builders import Built, Position


@dataclass(frozen=True)
class Instruction:
    instruction_id: str
    text: str


def stable_hash(*parts: str) -> int:
    """CRC-32: the same on every machine and run (unlike ``hash``), and cheap enough per instance."""
    return zlib.crc32("\x1f".join(parts).encode())


def pick_instruction(instructions: Sequence[Instruction], instance_id: str, seed: int) -> Instruction:
    return instructions[stable_hash(str(seed), instance_id) % len(instructions)]


def join_input(built: Built) -> str:
    """The instance's input without instruction: context, then the query when there is one."""
    return f"{built.context}\n\n{built.query}" if built.query else built.context


def place(instruction: str, built: Built, position: Position) -> str:
    """``before``: instruction, blank line, input. ``after``: context, instruction, then the query."""
    if position == "before":
        return f"{instruction}\n\n{join_input(built)}"
    if built.query:
        return f"{built.context}\n\n{instruction}\n\n{built.query}"
    return f"{built.context}\n\n{instruction}"
