"""``avsal.parallel.prefetch``: the reading-ahead thread that ``avsal predict`` decodes in."""

from __future__ import annotations

import threading

import pytest

from avsal.parallel import prefetch


def test_items_arrive_in_order_and_prepare_runs_in_the_background_thread():
    main = threading.get_ident()
    where = []
    out = list(prefetch(iter(range(100)), depth=3, prepare=lambda x: where.append(threading.get_ident())))
    assert out == list(range(100))
    assert len(where) == 100 and main not in set(where)


def test_an_error_reaches_the_consumer_at_its_position():
    def items():
        yield from range(5)
        raise ValueError("broken at 5")

    got = []
    with pytest.raises(ValueError, match="broken at 5"):
        for x in prefetch(items(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]  # everything before the error, then the error


def test_prepare_errors_are_raised_too():
    def prepare(x):
        if x == 3:
            raise OSError("cannot convert 3")

    got = []
    with pytest.raises(OSError, match="cannot convert 3"):
        for x in prefetch(iter(range(10)), prepare=prepare):
            got.append(x)
    assert got == [0, 1, 2]


def test_leaving_early_stops_the_thread_and_closes_the_source_there():
    closed, produced = [], []

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.append(threading.get_ident())

    before = threading.active_count()
    gen = prefetch(source(), depth=4, name="test-prefetch")
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert closed and closed[0] != threading.get_ident()  # closed in the background thread ...
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())  # ... which has ended
    assert threading.active_count() == before
    assert len(produced) <= 3 + 4 + 2  # it read at most `depth` (plus the ones in hand) ahead
