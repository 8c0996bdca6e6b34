"""Every error the planner raises, in one place: what a caller catches."""

from __future__ import annotations


class UnsupportedFeature(ValueError):
    """The problem asks for something the chosen engine cannot model."""


class NoValidSolution(RuntimeError):
    """No engine returned a plan that passed the checker."""


class OsrmError(RuntimeError):
    """The OSRM server could not answer."""


class Infeasible(Exception):
    """The sequence breaks a constraint; the message says which."""


class InstanceError(ValueError):
    """The file is not an instance we can read; the message names the file and the cause."""


class InvalidSolution(AssertionError):
    """A plan breaks the problem's rules; ``violations`` lists each break."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__("; ".join(violations[:10]) + (" ..." if len(violations) > 10 else ""))
        self.violations = violations
