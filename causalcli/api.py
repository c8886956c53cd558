"""The Python door: ``causalcli.estimate(spec, data=None, **overrides)`` (to be written in this step)."""
