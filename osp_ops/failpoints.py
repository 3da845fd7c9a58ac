"""Failpoints for crash tests: ``OSP_OPS_FAILPOINT=<name>`` kills this process there.

Several names may be given, comma-separated. The kill is SIGKILL: nothing gets to clean
up, as in a crash. This module imports nothing of osp-ops, so every layer can use it.

Operation steps (``engine/runner.py``):

- ``before-step:<step>``      the step is about to run
- ``after-step:<step>``       the step's effect happened, its completion not yet recorded
- ``step-recorded:<step>``    the step's completion is recorded

Backups (``objects/``, ``backups/manifest.py``):

- ``backup:after-multipart-create``  an S3 multipart upload exists, no part sent
- ``backup:mid-part``                after the first part (or chunk) of an object was written
- ``backup:before-complete``         every part uploaded, the upload not completed
- ``backup:after-objects``           every object stored, the manifest not yet written

Kubernetes (``platforms/kubernetes``):

- ``kube-apply:<n>``          after the n-th object written by one apply
"""

from __future__ import annotations

import os
import signal

ENV = "OSP_OPS_FAILPOINT"


def armed(name: str) -> bool:
    """Whether ``$OSP_OPS_FAILPOINT`` names the failpoint ``name``."""
    names = os.environ.get(ENV, "")
    return bool(names) and name in names.split(",")


def hit(name: str) -> None:
    """Die here with SIGKILL if the failpoint ``name`` is armed."""
    if armed(name):
        os.kill(os.getpid(), signal.SIGKILL)
