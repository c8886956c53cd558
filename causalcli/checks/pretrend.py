"""The ``pre_trend`` check: a joint test that the pre-treatment effects are zero, worded and judged once.

Every design that estimates effects before treatment (event studies, Callaway-Sant'Anna's pre-treatment
ATT(g,t)) tests them jointly; the check passes when the p-value is above ``alpha``. A test that cannot run
gives a check with ``passed`` None and the reason, never an exception; a test whose size cannot be trusted
(few clusters) is reported but not judged.
"""

from __future__ import annotations

from causalcli.records import Check

NAME = "pre_trend"
DOUBT = "pre-treatment effects are jointly non-zero: parallel trends look doubtful"
NOT_RUN = "pre-trend test not run: "


def pre_trend_check(statistic: float, p_value: float, alpha: float, test: str, symbol: str = "F",
                    reassurance: str = "no evidence against parallel pre-trends") -> Check:
    """Passed when ``p_value`` > ``alpha``; the detail names ``test``, its statistic (``symbol``) and p-value."""
    passed = bool(p_value > alpha)
    return Check(NAME, passed, f"{test}: {symbol} = {statistic:.3g}, p = {p_value:.3g} {'>' if passed else '<='} "
                               f"{alpha}; " + (reassurance if passed else DOUBT))


def pre_trend_not_run(reason: str, prefix: str = NOT_RUN) -> Check:
    """The test cannot apply: ``passed`` None, with the reason."""
    return Check(NAME, None, prefix + reason)


def not_judged(check: Check, why: str) -> Check:
    """The test is shown but fails nothing: its size cannot be trusted, for the reason ``why``."""
    return Check(check.name, None, f"{check.detail} -- not judged: {why}")


def with_caveat(check: Check, caveat: str) -> Check:
    """The same verdict, with a caveat on how far the test can be trusted."""
    return Check(check.name, check.passed, f"{check.detail} ({caveat})")
