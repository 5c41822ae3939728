"""The Check record and the doctor's top-level gathering of checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "FAIL" if self.required else "warn"

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


def run_doctor(environment=None, inventory=None) -> list[Check]:
    from erpops.doctor.endpoints import endpoint_checks
    from erpops.doctor.prerequisites import prerequisite_checks

    checks = prerequisite_checks()
    if environment is not None:
        checks += endpoint_checks(environment, inventory)
    return checks
