"""The pure parts of usage accounting: ratios, budgets, the ledger's records."""

from __future__ import annotations

import pytest

from threadline.sessions._metadata import derive_title
from threadline.sessions._usage import (
    RATIO_BOUNDS,
    UsageLedger,
    calibrated_budget,
    calibration_ratio,
)
from threadline.usage import Usage


def test_ratio_needs_enough_evidence_and_is_clamped() -> None:
    assert calibration_ratio(None) is None
    assert calibration_ratio({"calibration": {"reported": 10, "estimated": 20}}) is None
    assert calibration_ratio({"calibration": {"reported": 100, "estimated": 200}}) == 0.5
    assert calibration_ratio({"calibration": {"reported": 1, "estimated": 1000}}) == RATIO_BOUNDS[0]
    assert (
        calibration_ratio({"calibration": {"reported": 9000, "estimated": 100}}) == RATIO_BOUNDS[1]
    )
    assert calibration_ratio({"calibration": {"reported": "x", "estimated": 100}}) is None


def test_budget_scales_by_the_ratio() -> None:
    assert calibrated_budget(None, 2.0) is None
    assert calibrated_budget(8000, None) == 8000
    assert calibrated_budget(8000, 2.0) == 4000
    assert calibrated_budget(8000, 0.5) == 16000
    assert calibrated_budget(1, 4.0) == 1


def test_ledger_decays_old_samples_and_counts_only_this_run() -> None:
    before = Usage(requests=5, input_tokens=500, output_tokens=50, total_tokens=550)
    total = {
        "turns": 3,
        "requests": 9,
        "input_tokens": 900,
        "output_tokens": 90,
        "total_tokens": 990,
        "calibration": {"reported": 100.0, "estimated": 100.0},
    }
    ledger = UsageLedger(total, before)
    assert ledger.turn == 4 and ledger.ratio == pytest.approx(1.0)
    ledger.sample(600, 200)
    ledger.sample(0, 100)  # nothing reported: skipped
    assert ledger.ratio == pytest.approx((100 * 0.8 + 600) / (100 * 0.8 + 200))
    now = Usage(requests=7, input_tokens=800, output_tokens=70, total_tokens=870)
    records = ledger.records(now)
    assert records["usage/00000004"]["requests"] == 2
    assert records["usage/00000004"]["input_tokens"] == 300
    assert records["usage"]["turns"] == 4 and records["usage"]["requests"] == 11
    assert records["usage"]["total_tokens"] == 990 + 320


def test_titles() -> None:
    assert derive_title([]) is None
    assert (
        derive_title([{"role": "user", "content": "   "}, {"role": "user", "content": "b"}]) == "b"
    )
    parts = {"role": "user", "content": [{"type": "input_text", "text": "From parts"}]}
    assert derive_title([{"role": "assistant", "content": "no"}, parts]) == "From parts"
    long = "x" * 200
    assert derive_title([{"role": "user", "content": long}]) == "x" * 79 + "…"
