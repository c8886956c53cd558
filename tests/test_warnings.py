"""Python warnings raised in causalcli's own modules are errors in the test suite (pyproject's filterwarnings),
and the cases that used to leak RuntimeWarnings to stderr no longer do."""

from __future__ import annotations

import numpy as np
import pytest

from causalcli.errors import EstimationError


def test_a_numpy_warning_inside_a_causalcli_module_is_an_error():
    """numpy attributes a ufunc's RuntimeWarning to the calling line's module: code running as a causalcli
    module (here a probe compiled under that name) must raise, which proves the filter is active."""
    code = compile("np.array([1.0]) / np.array([0.0])", "causalcli/_probe.py", "exec")
    with pytest.raises(RuntimeWarning, match="divide by zero"):
        exec(code, {"__name__": "causalcli._probe", "np": np})
    # the same line in a module of another name only warns (peers keep their own warnings)
    with pytest.warns(RuntimeWarning):
        exec(code, {"__name__": "elsewhere", "np": np})


def test_a_separating_propensity_logit_in_callaway_santanna_fails_cleanly_without_overflow():
    """One treated unit with the largest value of a covariate (a refuter's random covariate can do this):
    the logit separates; the group-time comparison is an EstimationError, with no overflow warning."""
    from causalcli.designs.did.callaway_santanna import drdid_panel

    rng = np.random.default_rng(0)
    x = rng.normal(size=27)
    D = np.zeros(27, dtype=bool)
    D[np.argmax(x)] = True
    Z = np.column_stack([np.ones(27), x])
    with pytest.raises(EstimationError, match="logit"):
        drdid_panel(rng.normal(size=27), D, Z, np.ones(27), "dr")
