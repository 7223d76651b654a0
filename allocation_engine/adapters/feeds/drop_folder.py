"""A drop folder: another system writes feed files into a directory, and each is applied once,
then moved out of the way.

`DropFolder.sweep` takes every settled `*.csv` file of the folder in name order (a file written
less than `settle_seconds` ago may still be growing; a writer that writes `x.csv.part` and
renames it is never seen half-written), hands it to `apply` and moves it to `done/`, or, when
`refusal` says the error refuses it, to `refused/` beside a `<name>.error.txt` saying why. Any
other error (the store did not answer) leaves the file where it is for the next sweep. A crash
between applying and moving only means the next sweep applies the file again, which the feeds
answer as a replay (their idempotency key is the file's SHA-256), and then moves it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DONE = "done"
REFUSED = "refused"


@dataclass(frozen=True)
class Taken:
    """One file a sweep took: where it went and what `apply` answered or why it was refused."""

    name: str
    moved_to: Path
    result: object = None
    error: str | None = None


class DropFolder:
    def __init__(
        self,
        folder: Path,
        apply: Callable[[Path], object],
        refusal: Callable[[Exception], str | None],
        settle_seconds: float = 1.0,
    ) -> None:
        """`apply(path)` applies one file; `refusal(error)` is the text of an error that
        refuses the file for good, None for one worth retrying."""
        self.folder = folder
        self._apply, self._refusal, self._settle = apply, refusal, settle_seconds
        for sub in (DONE, REFUSED):
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def pending(self) -> list[Path]:
        """The settled feed files waiting in the folder, in name order."""
        now = time.time()
        return sorted(
            path
            for path in self.folder.glob("*.csv")
            if path.is_file()
            and not path.name.startswith(".")
            and now - path.stat().st_mtime >= self._settle
        )

    def sweep(self) -> list[Taken]:
        """Applies each pending file once and moves it; the files it took."""
        taken = []
        for path in self.pending():
            try:
                result = self._apply(path)
                moved = _move(path, self.folder / DONE)
            except FileNotFoundError:
                continue  # another sweeper (another server process) took it meanwhile
            except Exception as error:
                text = self._refusal(error)
                if text is None:
                    raise
                try:
                    moved = _move(path, self.folder / REFUSED)
                except FileNotFoundError:
                    continue
                moved.with_name(moved.name + ".error.txt").write_text(text + "\n", "utf-8")
                taken.append(Taken(path.name, moved, error=text))
                continue
            taken.append(Taken(path.name, moved, result))
        return taken

    def watch(
        self,
        stop: threading.Event,
        interval: float = 2.0,
        on_taken: Callable[[Taken], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Sweeps every `interval` seconds until `stop` is set; an error worth retrying goes to
        `on_error` and the next sweep tries again."""
        while not stop.is_set():
            try:
                for item in self.sweep():
                    if on_taken is not None:
                        on_taken(item)
            except Exception as error:
                if on_error is None:
                    raise
                on_error(error)
            stop.wait(interval)


def _move(path: Path, into: Path) -> Path:
    """Moves `path` into `into`, never over a file already there (`name.1.csv`, ...)."""
    target = into / path.name
    number = 0
    while target.exists():
        number += 1
        target = into / f"{path.stem}.{number}{path.suffix}"
    return path.replace(target)
