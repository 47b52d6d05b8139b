"""A small reader of deploy/Dockerfile's instructions (no Docker engine on the test machine)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case) and its argument text."""

    keyword: str
    argument: str

    def exec_form(self) -> list[str]:
        """The JSON array of a CMD/ENTRYPOINT in exec form."""
        value = json.loads(self.argument)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


def instructions(path: Path) -> list[Instruction]:
    """The instructions of ``path``: comments dropped, continuation lines joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, argument = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(argument.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result
