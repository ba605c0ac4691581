"""Progress for long loops: a tqdm bar on a terminal, periodic plain lines otherwise.

`progress(total, desc, unit, enabled=None)` returns an object with `update(n)` and `close()` (also a context
manager). `enabled=None` means "a bar on a terminal, lines when stderr is redirected"; False means silent.
A redirected log (CI, `./run.sh main > log`) gets one line every `PERIOD_S` seconds and one at the end, never
carriage-return bars: `calibrating: 250/500 img (50%), 12 s elapsed, about 12 s left`; a loop done within
`QUIET_BELOW_S` prints nothing.
"""

from __future__ import annotations

import sys
import threading
import time

PERIOD_S = 30.0  # seconds between lines in a redirected log
QUIET_BELOW_S = 5.0  # a loop shorter than this prints nothing at all


class _Lines:
    def __init__(self, total: int, desc: str, unit: str, stream, period_s: float):
        self.total, self.desc, self.unit, self.stream, self.period_s = total, desc.strip(), unit, stream, period_s
        self.n = 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()
        self.closed = False

    def _line(self, now: float) -> str:
        elapsed = now - self.started
        text = f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}" if self.total else f"{self.desc}: {self.n:,} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {elapsed:,.0f} s elapsed"
        if self.total and 0 < self.n < self.total:
            text += f", about {elapsed / self.n * (self.total - self.n):,.0f} s left"
        return text

    def update(self, n: int = 1) -> None:
        with self.lock:
            self.n += n
            now = time.monotonic()
            if now - self.last >= self.period_s and not (self.total and self.n >= self.total):  # the last one: close() says it
                self.last = now
                print(self._line(now), file=self.stream, flush=True)

    def close(self) -> None:
        with self.lock:
            now = time.monotonic()
            # A loop that finished before its first line is not worth one: quiet logs.
            if not self.closed and (self.last > self.started or now - self.started >= QUIET_BELOW_S):
                print(self._line(now) + " (done)", file=self.stream, flush=True)
            self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(total: int, desc: str, unit: str = "img", *, enabled: bool | None = None, stream=None, period_s: float = PERIOD_S, **bar):
    """A progress reporter for `total` steps (see the module docstring); extra keywords go to tqdm."""
    stream = stream or sys.stderr
    if enabled is False:
        return _Silent()
    if stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, **bar)
    return _Lines(total, desc, unit, stream, period_s)


def iterate(items, desc: str, unit: str = "img", *, enabled: bool | None = None, **bar):
    """Yield from `items` while reporting progress (its len() is the total)."""
    reporter = progress(len(items), desc, unit, enabled=enabled, **bar)
    try:
        for item in items:
            yield item
            reporter.update(1)
    finally:
        reporter.close()
