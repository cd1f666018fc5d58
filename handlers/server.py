"""Run a hardened TorchServe on loopback from Python (tests, demo, load tests, attack harness).

    with TorchServeProcess(model_store, env={"FEATURELOCK_KEY_REGISTRY": ..., "FEATURELOCK_KEK": ...}) as ts:
        ts.inference_url, ts.inference_key, ts.metrics_url

Each server gets free loopback ports, its own work directory (config.properties, key_file.json,
logs, an empty read-only workflow store, and a private TMPDIR so TorchServe's pid file never
collides with another server's), and its own process group: `stop()` runs `torchserve --stop`
and then signals the whole group, so no Java frontend or Python worker is left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from .errors import ServingError
from .ts_config import Ports, render_config

__all__ = ["TorchServeProcess", "ServerStartError", "check_prerequisites", "free_ports",
           "stop_workdir", "PGID_FILE"]

PGID_FILE = "featurelock-serve.pgid"


class ServerStartError(ServingError):
    """TorchServe could not be started, or its models did not become ready."""


def check_prerequisites() -> str:
    """The java executable, after checking Java 11+ and that the worker can import yaml."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ServerStartError("Java 11+ is required by TorchServe and was not found "
                               "(install a JDK/JRE 11+ or set JAVA_HOME)")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        raise ServerStartError(f"cannot run {java} -version") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < 11:
        raise ServerStartError(f"TorchServe needs Java 11+, found {java} (version {major or '?'})")
    try:
        import yaml  # noqa: F401  TorchServe 0.12's worker imports it without declaring it
    except ImportError:
        raise ServerStartError("pyyaml is required by TorchServe's worker: pip install pyyaml") from None
    return java


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound briefly, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class TorchServeProcess:
    """One TorchServe instance; a context manager that starts it and always stops it."""

    def __init__(self, model_store: str | Path, models: Sequence[str] | None = None, *,
                 workdir: str | Path | None = None, env: Mapping[str, str] | None = None,
                 ports: Ports | None = None, startup_timeout: float = 120.0,
                 wait_for_models: bool = True) -> None:
        self.model_store = Path(model_store).resolve()
        if not self.model_store.is_dir():
            raise ServerStartError(f"model store {self.model_store} is not a directory")
        self.models = list(models) if models else sorted(
            p.name for p in self.model_store.glob("*.mar"))
        if not self.models:
            raise ServerStartError(f"no .mar files in {self.model_store}")
        self._own_workdir = workdir is None
        # Absolute: TorchServe runs in the work directory, so relative paths would break.
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="featurelock-ts-")).resolve()
        self.env_overrides = dict(env or {})
        self.ports = ports or Ports(*free_ports(5))
        self.startup_timeout = startup_timeout
        self.wait_for_models = wait_for_models
        self.proc: subprocess.Popen | None = None
        self._keys: dict[str, str] = {}

    # -- addresses ---------------------------------------------------------------------
    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.inference}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.management}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"

    @property
    def inference_key(self) -> str:
        return self._key("inference")

    @property
    def management_key(self) -> str:
        return self._key("management")

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def model_names(self) -> list[str]:
        return [Path(m).stem for m in self.models]

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "TorchServeProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "TorchServeProcess":
        check_prerequisites()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        (self.workdir / "key_file.json").unlink(missing_ok=True)  # never read a stale one
        self._keys = {}
        config = self.workdir / "config.properties"
        config.write_text(render_config(self.model_store, self.models, self.ports,
                                        workflow_store=self._empty_workflow_store()),
                          encoding="utf-8")
        cmd = [self._torchserve(), "--start", "--foreground", "--ncs",
               "--model-store", str(self.model_store), "--ts-config", str(config)]
        with open(self.log_dir / "torchserve.out", "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self._env(), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        (self.workdir / PGID_FILE).write_text(f"{self.proc.pid}\n")
        try:
            self._wait_frontend()
            if self.wait_for_models:
                self.wait_ready(self.model_names())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                subprocess.run([self._torchserve(), "--stop"], cwd=self.workdir, env=self._env(),
                               capture_output=True, timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)  # the launcher, Java and every worker share the group
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(proc.pid):
                proc.poll()
                time.sleep(0.1)
            if not _group_alive(proc.pid):
                break
        proc.poll()
        (self.workdir / PGID_FILE).unlink(missing_ok=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- readiness ---------------------------------------------------------------------
    def _wait_frontend(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        key_file = self.workdir / "key_file.json"
        while time.monotonic() < deadline:
            self._check_alive()
            if key_file.is_file():
                try:
                    self._status("/models")
                    return
                except (OSError, ValueError, KeyError):
                    pass
            time.sleep(0.2)
        raise ServerStartError(f"TorchServe did not start within {self.startup_timeout:.0f}s; "
                               f"see {self.log_dir}")

    def model_status(self, name: str) -> list[str]:
        """The status of each worker of model `name` (e.g. ["READY"])."""
        doc = self._status(f"/models/{name}")
        return [w.get("status", "") for entry in doc for w in entry.get("workers", [])]

    def wait_ready(self, names: Sequence[str], timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        pending = list(names)
        while pending and time.monotonic() < deadline:
            self._check_alive()
            try:
                pending = [n for n in pending if "READY" not in self.model_status(n)]
            except (OSError, ValueError, KeyError):
                pass
            if pending:
                time.sleep(0.25)
        if pending:
            raise ServerStartError(f"models not ready: {', '.join(pending)}; see "
                                   f"{self.log_dir / 'model_log.log'}")

    def logs(self) -> str:
        """All log text written so far (frontend and workers)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*"))
                         if p.is_file())

    # -- internals ---------------------------------------------------------------------
    def _empty_workflow_store(self) -> Path:
        """<workdir>/no-workflows, empty: POST /workflows finds no archive there (TorchServe
        0.12 cannot turn that API off; allowed_urls lets it fetch none). Read-only for
        non-root users too."""
        path = self.workdir / "no-workflows"
        path.mkdir(exist_ok=True)
        if any(path.iterdir()):  # an archive there would be registrable
            raise ServerStartError(f"{path} must be empty")
        path.chmod(0o500)
        return path

    def _status(self, path: str):
        req = urllib.request.Request(self.management_url + path,
                                     headers={"Authorization": f"Bearer {self.management_key}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise ValueError(f"management API answered {exc.code}") from None

    def _key(self, kind: str) -> str:
        if kind not in self._keys:
            try:
                doc = json.loads((self.workdir / "key_file.json").read_text())
            except (OSError, ValueError):
                raise KeyError("key_file.json not readable yet") from None
            self._keys = {k: v["key"] for k, v in doc.items() if isinstance(v, dict) and "key" in v}
        return self._keys[kind]

    def _check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise ServerStartError(f"TorchServe exited; see {self.log_dir / 'torchserve.out'}")

    def _torchserve(self) -> str:
        local = Path(sys.executable).parent / "torchserve"
        found = str(local) if local.exists() else shutil.which("torchserve")
        if not found:
            raise ServerStartError("torchserve not found: pip install 'featurelock[serve]'")
        return found

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env_overrides)
        tmp = str(self.workdir / "tmp")
        env.update(TMPDIR=tmp, TEMP=tmp, LOG_LOCATION=str(self.log_dir),
                   METRICS_LOCATION=str(self.log_dir))
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        return env


def stop_workdir(workdir: str | Path, timeout: float = 20.0) -> bool:
    """Stop a server started (detached) in `workdir` by `featurelock serve`. False if none."""
    pgid_file = Path(workdir) / PGID_FILE
    try:
        pgid = int(pgid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)
        if not _group_alive(pgid):
            break
    pgid_file.unlink(missing_ok=True)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies count as alive for killpg(0); reap our direct child if it exited.
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return _has_live_members(pgid)


def _has_live_members(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
