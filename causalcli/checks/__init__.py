"""Checks that say when an estimate should not be trusted: refutation rules and verdicts, sensitivity."""
