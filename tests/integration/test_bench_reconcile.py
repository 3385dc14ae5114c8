"""`make bench-reconcile` at a tiny scale, so the benchmark keeps working as the layer changes.

Every phase runs against DynamoDB Local and a moto server as in the full run (which asserts
along the way that each check repaired what it should); the report is rendered, not written
over the committed results.
"""

from __future__ import annotations

import pytest

from benchmarks.reconcile import Scale, render, run
from quota_uploads.drift import work

pytestmark = pytest.mark.integration

TINY = Scale(
    users=200,
    objects=10,
    active_share=0.05,
    drifted_share=0.04,
    unknown_users=2,
    data_files=2,
    rows_per_slice=400,
    worst_case_rows=200,
)


def test_the_benchmark_lists_only_active_users_hourly_and_drifted_users_in_the_audit() -> None:
    layer_slice_rows = work.ROWS_PER_SLICE
    results = run(TINY)
    assert layer_slice_rows == work.ROWS_PER_SLICE, "the layer's slice size was not restored"
    assert results.active_pass.tally.lists == TINY.active
    assert results.idle_pass.tally.lists == 0
    assert results.audit_listed == results.drifted
    assert len(results.audit.of("inventory")) > TINY.data_files, "no file was cut into slices"
    text = render(results)
    for heading in ("## Hourly pass", "## Daily audit", "## Time and memory", "## Monthly cost"):
        assert heading in text
