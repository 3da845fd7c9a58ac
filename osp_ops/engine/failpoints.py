"""Failpoints for crash tests: ``OSP_OPS_FAILPOINT=<name>`` kills this process there.

Names look like ``before-step:deploy``, ``after-step:deploy`` (the step's effect happened
but its completion is not yet recorded) and ``step-recorded:deploy``. Several names may
be given, comma-separated. The kill is SIGKILL: nothing gets to clean up, as in a crash.
"""

from __future__ import annotations

import os
import signal

ENV = "OSP_OPS_FAILPOINT"


def hit(name: str) -> None:
    """Die here with SIGKILL if the failpoint ``name`` is armed."""
    armed = os.environ.get(ENV)
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
