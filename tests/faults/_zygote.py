"""A pre-imported MLflow tracking server that forks a fresh serving process on demand.

Run as ``python _zygote.py <log> <mlflow server arguments...>``. It runs the ``mlflow server``
command itself with these arguments up to the point where that command would exec its uvicorn
worker, and takes from it the worker's environment and uvicorn options; it skips only the
command's store initialisation (the suite created the schema before). It then imports the app the
worker would serve, ``mlflow.server.fastapi_app`` (~5 s of CPU here: the cost that would otherwise
dominate every restart), and for each line ``start`` on stdin forks a child that becomes its own
process group and serves the app with uvicorn as the worker would; it answers with the child's
PID. The suite SIGKILLs that process group and sends ``start`` again: a new server process on the
same store and port, up in ~0.3 s.

The zygote never serves a request and opens no store (the worker creates its stores lazily, on
its first request), so every child starts from the state a freshly exec'd worker has.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


class _Captured(Exception):
    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.cmd, self.env = cmd, env


def _worker_setup(args: list[str]) -> tuple[list[str], dict[str, str]]:
    import mlflow.server
    import mlflow.server.handlers
    from mlflow.cli import server

    def capture(cmd, extra_env=None, **_):
        raise _Captured(list(cmd), dict(extra_env or {}))

    mlflow.server._exec_cmd = capture
    mlflow.server.handlers.initialize_backend_stores = lambda *a, **k: None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the PID channel
            server.main(args, standalone_mode=False)
    except _Captured as got:
        return got.cmd, got.env
    raise RuntimeError("mlflow server returned without starting its worker")


def _option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def main() -> None:
    log_path, args = sys.argv[1], sys.argv[2:]
    cmd, env = _worker_setup(args)
    assert cmd[-1] == "mlflow.server.fastapi_app:app", cmd
    os.environ.update(env)
    import uvicorn
    from mlflow.server.fastapi_app import app

    host, port, log_config = _option(cmd, "--host"), int(_option(cmd, "--port")), _option(cmd, "--log-config")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "start":
            continue
        pid = os.fork()
        if pid == 0:
            os.setsid()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(0)
            uvicorn.run(app, host=host, port=port, workers=1, log_config=log_config)
            os._exit(0)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
