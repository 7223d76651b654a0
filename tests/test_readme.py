"""The README's Python example of the engine runs as written and prints what it promises."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_engine_example_runs_as_written() -> None:
    """Given the first python block of the README, when it runs, then it prints an OPTIMAL plan
    whose shipments cover both order lines."""
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.group(1), str(README), "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("OPTIMAL ")
    shipped = "\n".join(lines[1:])
    assert "'SKU-1', 2" in shipped and "'SKU-2', 1" in shipped
