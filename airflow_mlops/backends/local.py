"""The ``local`` backend: the training entrypoint in a subprocess on the Airflow worker.

The worker's Python runs the script in a fresh temporary working directory, with nothing but the
entrypoint's CLI to talk through. Its environment is built from an allow-list, not inherited:
``PATH``, ``HOME``, locale, temp folders, ``PYTHON*``, CA bundles and thread counts of the worker
(:data:`INHERITED`), plus what the DAG author passes. The worker's cloud credentials (``AWS_*``,
``AZURE_*``, ``GOOGLE_APPLICATION_CREDENTIALS`` ...), tokens and Airflow's own configuration and
connections do not reach the job unless the DAG names them in ``inherit_env``. (The job still runs
as the worker's user: this keeps secrets out of the job's environment and output, it is not a
sandbox.) Its stdout and stderr stream into the task log line by line; a nonzero exit fails the
job with the tail of stderr (the script's exception).

``backend_config`` (set in the DAG file: a run's form may set only ``timeout``):

* ``python``: interpreter to run the entrypoint with (default: the worker's ``sys.executable``)
* ``env``: extra environment variables for the job (``{"OMP_NUM_THREADS": "1"}``)
* ``inherit_env``: names of the worker's variables to pass on, a trailing ``*`` for a prefix
  (``["AWS_PROFILE", "AWS_*"]``: the job reads s3:// data with the worker's credentials)
* ``timeout``: seconds before the job is killed and failed (default: no limit)
* ``keep_workdir``: keep the working directory of a failed job for inspection (default False)
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_mlops.backends.base import JobHandle, TrainingBackend, TrainingJobSpec, require_output

if TYPE_CHECKING:
    import logging

_STDERR_TAIL_LINES = 40
_STDERR_TAIL_CHARS = 4000
INHERITED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TMP",
        "TEMP",
        "LD_LIBRARY_PATH",
        "VIRTUAL_ENV",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    }
)
"""The worker's variables every job gets: what a Python process needs to run, nothing secret."""
INHERITED_PREFIXES = ("LC_", "PYTHON")


class LocalBackend(TrainingBackend):
    """Run the entrypoint with the worker's Python in a subprocess (blocking; never defers)."""

    name = "local"
    title = "local"
    job_noun = "local training job"
    config_keys = frozenset({"python", "env", "inherit_env", "timeout", "keep_workdir"})
    form_keys = {
        "timeout": {"type": "number", "minimum": 1, "description": "seconds before the job is killed"},
    }

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        super().__init__(config, log)
        env = self.config.get("env") or {}
        if not isinstance(env, dict):
            raise ValueError(f"backend_config.env must be a mapping, got {type(env).__name__}")
        inherit = self.config.get("inherit_env") or []
        if isinstance(inherit, str) or not all(isinstance(v, str) for v in inherit):
            raise ValueError("backend_config.inherit_env must be a list of variable names (NAME or PREFIX_*)")
        self._proc: subprocess.Popen | None = None
        self._running: JobHandle | None = None

    def command(self, spec: TrainingJobSpec, output_dir: str) -> list[str]:
        cmd = [str(self.config.get("python") or sys.executable), os.path.abspath(spec.entrypoint)]
        cmd += ["--train", spec.train_data]
        if spec.validation_data:
            cmd += ["--validation", spec.validation_data]
        cmd += ["--params", json.dumps(spec.params, sort_keys=True), "--output-dir", output_dir]
        return cmd

    def environment(self) -> dict[str, str]:
        """The job's environment: :data:`INHERITED` variables of the worker, those ``inherit_env``
        names, then ``env``. (Cloud variables such as ``SM_MODEL_DIR`` are never inherited: the CLI
        says where things are.)"""
        names = tuple(self.config.get("inherit_env") or ())
        exact = INHERITED | {n for n in names if not n.endswith("*")}
        prefixes = INHERITED_PREFIXES + tuple(n[:-1] for n in names if n.endswith("*") and len(n) > 1)
        env = {k: v for k, v in os.environ.items() if k in exact or k.startswith(prefixes)}
        env["PYTHONUNBUFFERED"] = "1"
        env.update({str(k): str(v) for k, v in (self.config.get("env") or {}).items()})
        return env

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        """Run the job to the end (a worker subprocess cannot be reattached after a crash: a
        re-run starts it again in a fresh directory)."""
        self.validate(spec)
        workdir = tempfile.mkdtemp(prefix=f"mlops-{spec.job_name or 'train'}-"[:60])
        output_dir = os.path.join(workdir, "outputs")
        cmd = self.command(spec, output_dir)
        self.log.info("Starting local training job %s in %s: %s", spec.job_name, workdir, " ".join(cmd[:2]))
        started = time.monotonic()
        self._proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # cancel() stops the script and anything it started
        )
        handle = JobHandle(
            backend=self.name,
            job_id=spec.job_name or f"local-{self._proc.pid}",
            status="running",
            details={"workdir": workdir, "output_dir": output_dir, "pid": self._proc.pid},
        )
        self._running = handle
        try:
            tail, timed_out = self._stream(self._proc, self.config.get("timeout"))
            code = self._proc.wait()
        finally:
            self._proc = self._running = None
        elapsed = time.monotonic() - started
        handle.details["returncode"] = code
        if code == 0 and not timed_out:
            handle.status = "succeeded"
            handle.message = f"entrypoint finished in {elapsed:.1f}s"
            self.log.info("Local training job %s succeeded in %.1fs", handle.job_id, elapsed)
            return handle
        stderr_tail = "\n".join(tail)[-_STDERR_TAIL_CHARS:]
        if timed_out:
            handle.status = "failed"
            handle.message = f"entrypoint killed after the {self.config['timeout']}s timeout\n{stderr_tail}"
        elif code < 0:
            handle.status = "cancelled"
            handle.message = f"entrypoint stopped by signal {-code}\n{stderr_tail}"
        else:
            handle.status = "failed"
            handle.message = f"entrypoint exited with code {code}:\n{stderr_tail}"
        if not self.config.get("keep_workdir"):
            shutil.rmtree(workdir, ignore_errors=True)
        return handle

    def _stream(self, proc: subprocess.Popen, timeout: Any) -> tuple[collections.deque[str], bool]:
        """Copy the job's output lines into the task log; keep the last stderr lines."""
        tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        deadline = time.monotonic() + float(timeout) if timeout else None
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        timed_out = False
        pending = {"stdout": b"", "stderr": b""}

        def emit(stream: str, raw: bytes) -> None:
            text = raw.decode("utf-8", errors="replace").rstrip()
            if not text:
                return
            if stream == "stderr":
                tail.append(text)
                self.log.info("[job stderr] %s", text)
            else:
                self.log.info("[job] %s", text)

        try:
            while sel.get_map():
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                events = sel.select(timeout=None if wait is None else min(wait, 1.0))
                if deadline is not None and time.monotonic() >= deadline and proc.poll() is None:
                    timed_out = True
                    self._kill(proc)
                    deadline = None
                for key, _ in events:
                    # os.read, not readline: a partial line (a progress bar) must never block the
                    # other pipe, or a chatty job deadlocks on a full pipe buffer
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        emit(key.data, pending[key.data])
                        pending[key.data] = b""
                        continue
                    lines = (pending[key.data] + chunk).replace(b"\r", b"\n").split(b"\n")
                    pending[key.data] = lines.pop()
                    for raw in lines:
                        emit(key.data, raw)
        finally:
            sel.close()
        return tail, timed_out

    def poll(self, handle: JobHandle) -> JobHandle:
        # submit() returns only when the process has ended
        return handle

    def fetch_output(self, handle: JobHandle, local_dir: str) -> str:
        """Move the job's output folder into ``local_dir`` and remove its working directory."""
        source = handle.details.get("output_dir")
        if not source or not os.path.isdir(source):
            raise FileNotFoundError(f"local job {handle.job_id} left no output directory ({source})")
        target = os.path.join(local_dir, "output")
        shutil.move(source, target)
        shutil.rmtree(handle.details.get("workdir") or "", ignore_errors=True)
        return require_output(target, f"the output of local job {handle.job_id}")

    def find_job(self, spec: TrainingJobSpec) -> JobHandle | None:
        """The job still running in this backend's subprocess (``submit`` returns only when it ends)."""
        running = self._running
        return None if running is None else replace(running, details=dict(running.details))

    def cancel(self, handle: JobHandle) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self.log.info("Local training job %s is not running: nothing to cancel", handle.job_id)
            return
        self.log.warning("Cancelling local training job %s (pid %s)", handle.job_id, proc.pid)
        self._kill(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
