"""The streaming CSV reader reads a bounded number of blocks ahead of its consumer."""

from __future__ import annotations

import io
import threading
import time

import pytest

from assets_project.lib import readers


class CountingSource(io.RawIOBase):
    """Bytes that remember how many reads they served."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self._data.read(size)


def test_the_reader_reads_at_most_a_few_blocks_ahead_of_the_batches_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pyarrow alone reads up to 32 blocks ahead of a slow consumer (its I/O thread fills a
    queue); through BoundedReadAhead it stays READ_AHEAD_BLOCKS ahead, and every row arrives."""
    monkeypatch.setattr(readers, "BLOCK_SIZE", 1024)
    monkeypatch.setattr(readers, "READ_AHEAD_WAIT_S", 60.0)  # never the fallback here
    monkeypatch.setattr(readers, "READ_AHEAD_BLOCKS", 2)
    rows = [f"{n},{'x' * 40}" for n in range(1, 3001)]  # about 130 blocks
    source = CountingSource(("\n".join(rows) + "\n").encode())
    opened = readers.open_csv_stream(source, ("id", "text"), name="stream")
    batches = iter(opened.batches)
    first = next(batches)
    time.sleep(0.5)  # what a slow validation or write would give the I/O thread
    assert source.reads <= 4  # the first block, the allowance of 2, one more (pyarrow: 33)
    ids = first["id"].to_pylist() + [i for batch in batches for i in batch["id"].to_pylist()]
    assert ids == [str(n) for n in range(1, 3001)]
    assert source.reads > 100  # the rest was read after all


def test_a_closed_source_never_makes_a_read_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer that stops early (an error downstream) closes the generator; pyarrow's I/O
    thread may still read, and must not be parked (it would hold the process at exit)."""
    monkeypatch.setattr(readers, "READ_AHEAD_WAIT_S", 60.0)
    bounded = readers.BoundedReadAhead(CountingSource(b"x" * 100))
    for _ in range(readers.READ_AHEAD_BLOCKS):
        bounded.read(1)  # the allowance is used up: the next read would wait for a batch
    bounded.close()
    reader = threading.Thread(target=lambda: [bounded.read(1) for _ in range(5)])
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive()
