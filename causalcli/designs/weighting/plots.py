"""Weighting plots: a love plot (|SMD| before and after weighting) and propensity-score histograms by arm.

Both read only ``diagnostics.balance`` and ``diagnostics.overlap.histogram``,
which the weighting design fills in the same shape as matching, so the
drawing code is shared with ``causalcli.charts``.
"""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import love_plot, propensity_histogram, segment_effects

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

PLOTS: dict[str, Callable[[Result], bytes | None]] = {"love": love_plot, "propensity": propensity_histogram,
                                                     "segments": segment_effects}
