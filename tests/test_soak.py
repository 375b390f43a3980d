"""The soak, short: `bench.soak` for ~20 s at twice the sustainable rate, with its own pass criteria, on
bench.latency's photo mix (portraits and group photos: several canvas sizes meet in the batchers).

Only 200 or the documented 503 / 1002 with Retry-After, bounded latency of admitted compares, /readyz and
/metrics answering within a second, no memory drift. The 10-minute run's report is in bench/results.
"""

from __future__ import annotations

from bench.soak import parser, run


def test_short_soak_at_twice_the_sustainable_rate_with_the_photo_mix() -> None:
    args = parser().parse_args(["--duration", "12", "--calibrate", "4", "--rate-factor", "2", "--workers", "2",
                                "--queue-size", "4", "--photo-mix"])
    passed, text = run(args)
    assert passed, text
