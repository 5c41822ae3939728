"""`erpops doctor`: is this machine, and the environment it points at, ready?

Each check is a small function returning a ``Check``; ``run_doctor`` gathers the
prerequisite checks (programs on this machine) and, with an environment, the
reachability of every endpoint the inventory names.
"""

from erpops.doctor.checks import Check, run_doctor

__all__ = ["Check", "run_doctor"]
