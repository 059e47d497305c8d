"""The sliding window on its own (times given, no clock): what is counted, when a refused client gets
in again, and the headers each decision carries."""

from __future__ import annotations

from activities.ratelimit.window import decide


def run(times: list[float], calls: int, period: float) -> list[bool]:
    hits: list[float] = []
    allowed = []
    for now in times:
        decision, hits = decide(hits, now, calls, period)
        allowed.append(decision.allowed)
    return allowed


def test_no_burst_at_a_window_boundary():
    # 5 per 60 s, all used in the last second of a minute: a fixed window would let 5 more in at 60.0
    assert run([59.0, 59.2, 59.4, 59.6, 59.8], 5, 60) == [True] * 5
    assert run([59.0, 59.2, 59.4, 59.6, 59.8, 60.0, 61.0, 100.0, 118.9], 5, 60) == [True] * 5 + [False] * 4
    # each slot comes back exactly when its request is a full period old, one at a time
    assert run([0, 1, 2, 3, 4, 59.99, 60.0, 60.5, 61.0, 61.0], 5, 60) == [True] * 5 + [False, True, False, True, False]


def test_refused_requests_are_not_counted():
    hits: list[float] = []
    for now in (0.0, 1.0):
        _, hits = decide(hits, now, 2, 10)
    for now in (2.0, 3.0, 9.0):  # knocking while refused does not push the reopening back
        decision, hits = decide(hits, now, 2, 10)
        assert not decision.allowed and hits == [0.0, 1.0]
    assert decide(hits, 10.0, 2, 10)[0].allowed


def test_headers_of_an_allowed_and_a_refused_request():
    first, hits = decide([], 1000.2, 3, 60)
    assert dict(first.headers()) == {b"x-ratelimit-limit": b"3", b"x-ratelimit-remaining": b"2",
                                     b"x-ratelimit-reset": b"1061"}  # unix time, rounded up
    for now in (1010.0, 1020.0):
        last, hits = decide(hits, now, 3, 60)
    assert (last.allowed, last.remaining, last.reset_at) == (True, 0, 1060.2)  # the oldest leaves at 1060.2
    refused, hits = decide(hits, 1030.0, 3, 60)
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after == 1060.2 - 1030.0
    assert dict(refused.headers())[b"retry-after"] == b"31"  # rounded up: asking at 1060.2 gets in
    assert b"retry-after" not in dict(last.headers())


def test_a_lowered_limit_waits_for_enough_old_requests_to_leave():
    hits = [1.0, 2.0, 3.0, 4.0, 5.0]  # counted under an older, higher limit
    refused, kept = decide(hits, 6.0, 2, 60)
    # four of the five must leave before a third request fits under 2 per 60 s: the fourth leaves at 64
    assert not refused.allowed and refused.reset_at == 64.0 and kept == hits
