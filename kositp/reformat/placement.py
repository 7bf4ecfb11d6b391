"""Choosing an instruction for an instance and placing it as the seed's rows do.

The choice is a seeded hash of the instance id, so a rerun picks the same instruction and
neighbouring instances pick different ones. ``definition`` and ``instruction_id`` stay in their
own columns; ``prompt`` is the seed's ``input`` field (instruction and input together), so
instructions can be resampled later without rebuilding the inputs.

Placement works on whole columns (Arrow joins strings in C++): converting the instance's text
from Python once, rather than the input and the prompt that repeats it, halves the conversion.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from kositp.reformat.builders import Position

BLANK_LINE = "\n\n"


@dataclass(frozen=True)
class Instruction:
    instruction_id: str
    text: str


def stable_hash(*parts: str) -> int:
    """CRC-32: the same on every machine and run (unlike ``hash``), and cheap enough per instance."""
    return zlib.crc32("\x1f".join(parts).encode())


def instruction_chooser(task_id: str, count: int, seed: int) -> Callable[[str], int]:
    """For one task of ``count`` instructions, the index of the one each record's instance gets.

    The hash is ``stable_hash(str(seed), f"{task_id}-{record_id}")``; the CRC of all but the
    record id is computed once here and continued per instance.
    """
    prefix = zlib.crc32(f"{seed}\x1f{task_id}-".encode())
    return lambda record_id: zlib.crc32(record_id.encode(), prefix) % count


def place(
    definition: pa.Array, context: pa.Array, query: pa.Array, position: Position
) -> tuple[pa.Array, pa.Array]:
    """``(input, prompt)`` of instances: ``input`` is the context, then the query where there is one
    (a null query: none). ``before``: instruction, blank line, input. ``after``: context, instruction,
    then the query."""
    input_ = pc.binary_join_element_wise(context, query, BLANK_LINE, null_handling="skip")
    if position == "before":
        return input_, pc.binary_join_element_wise(definition, input_, BLANK_LINE)
    return input_, pc.binary_join_element_wise(context, definition, query, BLANK_LINE, null_handling="skip")
