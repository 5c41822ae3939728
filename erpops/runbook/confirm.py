"""Who may let a risky step run: the confirmation policy and human gates.

- DESTRUCTIVE steps need ``--yes``, or on a TTY the environment's name typed back.
  Without a TTY and without ``--yes`` the run is refused (exit 3) before its first step.
- A production-tier environment always wants the typed name, unless ``--yes`` comes
  with ``--confirm-env NAME`` naming that very environment.
- A step with ``confirm:`` (or a control.confirm step) is a gate: approved by ``--yes``
  (and logged so), asked on a TTY, refused up front when neither is available.
- In a tabletop exercise nothing real is touched, so risk needs no confirmation;
  gates and failures are decisions of the participants (asked, or given by --decide).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from erpops.errors import Refused

TABLETOP_FAILURE_CHOICES = ["retry", "skip", "abort"]


@dataclass
class ConfirmPolicy:
    yes: bool = False
    confirm_env: str | None = None
    interactive: bool = False
    tabletop: bool = False
    decisions: dict[str, str] = field(default_factory=dict)  # tabletop: step -> choice
    operator: str = ""

    def preflight(self, planned: list, env_name: str | None, tier: str | None, runbook: str) -> str | None:
        """Refuse (exit 3) unless the run may start; returns how destructive steps were confirmed."""
        # a step whose when: the inputs already decided false never runs: it needs no confirmation
        planned = [s for s in planned if getattr(s, "when", None) is not False]
        destructive = [s.id for s in planned if s.risk == "DESTRUCTIVE"]
        gates = [s.id for s in planned if s.confirm or s.uses == "control.confirm"]
        if self.tabletop:
            return None
        target = env_name or runbook
        if self.confirm_env is not None and self.confirm_env != env_name:
            raise Refused(f"--confirm-env {self.confirm_env} does not match the environment of this run "
                          f"({env_name or 'none'})", hint=f"pass --confirm-env {env_name}" if env_name else None)
        confirmed = None
        if destructive:
            steps = ", ".join(destructive)
            if tier == "production":
                if self.yes and self.confirm_env == env_name:
                    confirmed = "--yes --confirm-env"
                elif self.interactive:
                    confirmed = self._typed(target, f"{runbook} has DESTRUCTIVE steps ({steps}) on the "
                                            f"PRODUCTION environment {env_name}.")
                else:
                    raise Refused(f"{runbook}: DESTRUCTIVE steps ({steps}) on production environment {env_name} "
                                  "need a typed confirmation; nothing was run",
                                  hint=f"on a TTY type the name, or pass --yes --confirm-env {env_name}")
            elif self.yes:
                confirmed = "--yes"
            elif self.interactive:
                confirmed = self._typed(target, f"{runbook} has DESTRUCTIVE steps ({steps}) on {target}.")
            else:
                raise Refused(f"{runbook}: DESTRUCTIVE steps ({steps}) need confirmation and there is no TTY; "
                              "nothing was run", hint="pass --yes to confirm")
        if gates and not self.yes and not self.interactive:
            raise Refused(f"{runbook}: steps {', '.join(gates)} wait for a human and there is no TTY; "
                          "nothing was run", hint="pass --yes to approve the gates, or run on a terminal")
        return confirmed

    def _typed(self, expected: str, what: str) -> str:
        from erpops.ui.prompts import typed_confirmation

        if not typed_confirmation(expected, what):
            raise Refused(f"confirmation refused: the typed name did not match {expected!r}; nothing was run")
        return "typed"

    def gate(self, step: str, message: str) -> tuple[bool, str, float]:
        """(approved, by whom, seconds waited) for a human gate during the run."""
        start = time.monotonic()
        if self.tabletop and step in self.decisions:
            return self.decisions[step] in ("approve", "yes", "approved"), "--decide", 0.0
        if self.yes:
            return True, "--yes", 0.0
        if self.interactive:
            from erpops.ui.prompts import yes_no

            ok = yes_no(f"[{step}] {message}")
            return ok, self.operator, round(time.monotonic() - start, 3)
        if self.tabletop:
            return True, "default (no TTY)", 0.0
        return False, "no TTY", 0.0

    def failure_decision(self, step: str, error: str) -> tuple[str, str, float]:
        """Tabletop: the participants decide what happens after a failed step."""
        start = time.monotonic()
        if step in self.decisions:
            return self.decisions[step], "--decide", 0.0
        if self.interactive:
            from erpops.ui.prompts import choose

            choice = choose(f"[tabletop] step {step} failed: {error!r}. Retry, skip it, or abort?",
                            TABLETOP_FAILURE_CHOICES)
            return choice, self.operator, round(time.monotonic() - start, 3)
        return "abort", "default (no TTY)", 0.0
