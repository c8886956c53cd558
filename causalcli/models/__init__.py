"""Models shared by designs: fixed-effects OLS with CRV1, the propensity logit, synthetic-control weights."""
