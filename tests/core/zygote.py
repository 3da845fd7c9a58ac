"""Runs the real CLI (``osp_ops.cli.main.main``) in forked processes, imports paid once.

The CLI takes over a second to import; the crash matrix runs it some 80 times. This
server imports it once, then for each request forks a child that sets its own argv,
environment, working directory and output files and calls ``main()`` exactly as the
``osp-ops`` console script does. A failpoint's SIGKILL kills that child only.

Protocol on stdin/stdout, one JSON object per line:
  request  {"argv": [...], "env": {...}, "cwd": "...", "out": "path", "err": "path"}
  started  {"pid": N}          (as soon as the child is forked)
  finished {"pid": N, "rc": N} (rc is -signal when the child was killed)
A request with "wait": false returns only "started"; {"reap": N} waits for child N.
"""

from __future__ import annotations

import json
import os
import sys


def _child(req: dict[str, object]) -> None:
    os.chdir(str(req["cwd"]))
    env = req["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    for fd, path in ((1, req["out"]), (2, req["err"])):
        f = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    argv = req["argv"]
    assert isinstance(argv, list)
    sys.argv = ["osp-ops", *map(str, argv)]
    code = 0
    try:
        from osp_ops.cli.main import main

        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _rc(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def serve() -> None:
    import osp_ops.cli.main  # noqa: F401  (the import the children share)

    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        if "reap" in req:
            _, status = os.waitpid(int(req["reap"]), 0)
            out.write(json.dumps({"pid": req["reap"], "rc": _rc(status)}) + "\n")
            out.flush()
            continue
        pid = os.fork()
        if pid == 0:
            _child(req)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        if req.get("wait", True):
            _, status = os.waitpid(pid, 0)
            out.write(json.dumps({"pid": pid, "rc": _rc(status)}) + "\n")
            out.flush()


if __name__ == "__main__":
    serve()
