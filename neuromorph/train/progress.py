"""A dependency-free progress bar on stderr: one redrawn line on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``[epoch 3/10] |#####.....| 12/25 loss 0.412 acc 0.871 rate 0.084 1.2 s/it``.

    On a TTY the line is redrawn in place (at most 10 times a second); into a file or pipe only the
    final line of each bar is written, so logs stay readable.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, stream: TextIO | None = None, width: int = 24):
        self.total, self.desc, self.enabled, self.width = total, desc, enabled, width
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.done = 0
        self.start_done = 0  # steps already done before this bar started (a resumed epoch)
        self.fields: dict[str, float | None] = {}

    def update(self, done: int, **fields: float | None) -> None:
        self.done = done
        self.fields.update(fields)
        now = time.perf_counter()
        if self.enabled and self.tty and (now - self.last_draw > 0.1 or done == self.total):
            self.last_draw = now
            self.stream.write("\r" + self._line() + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self.stream.write(("\r" if self.tty else "") + self._line() + ("\x1b[K\n" if self.tty else "\n"))
        self.stream.flush()

    def _line(self) -> str:
        filled = int(self.width * self.done / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        ran = self.done - self.start_done
        rate = elapsed / ran if ran > 0 else 0.0
        parts = [f"{k} {v:.4g}" for k, v in self.fields.items() if v is not None]
        return (
            f"{self.desc} |{'#' * filled}{'.' * (self.width - filled)}| {self.done}/{self.total} "
            + " ".join(parts)
            + f" {rate:.2f} s/it {elapsed:.0f} s"
        )
