"""Failpoints for crash tests: ``OSP_OPS_FAILPOINT=<name>`` kills this process there.

Backup failpoints (comma-separate several):

- ``backup:after-multipart-create``  an S3 multipart upload exists, no part sent
- ``backup:mid-part``                after the first part of an object was uploaded
- ``backup:before-complete``         every part uploaded, the upload not completed
- ``backup:after-objects``           every object stored, the manifest not yet written

The kill is SIGKILL: nothing gets to clean up, as in a crash.
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
