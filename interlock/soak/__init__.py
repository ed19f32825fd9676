"""The chaos soak: registrations under seeded faults while the orchestrator is SIGKILLed.

``scripts/soak`` / ``interlock soak``. The pieces: :mod:`~interlock.soak.faults` (the seeded
fault mix and the error codes it explains), :mod:`~interlock.soak.driver` (the run:
supervisor, submissions, kills, evidence), :mod:`~interlock.soak.verdict` (pure rules: what
must hold, the figures), :mod:`~interlock.soak.progress` (the status line while it runs).
"""

from interlock.soak.driver import SoakConfig, SoakError, run_soak
from interlock.soak.faults import DEFAULT_MIX, FaultMix
from interlock.soak.verdict import SoakReport

__all__ = ["DEFAULT_MIX", "FaultMix", "SoakConfig", "SoakError", "SoakReport", "run_soak"]
