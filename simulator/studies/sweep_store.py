"""Sweep bookkeeping and execution: configuration hashes, the resumable result store, and the
two backends that run independent tasks (local processes, or Ray tasks).

Owns: `config_hash` (sha256 of canonical JSON), `SweepStore` (one JSON file per finished task,
written atomically: temp file in the same folder + os.replace, so a killed sweep never leaves a
half-written result and a rerun skips what is already there), and `run_tasks`. Does not know what
a task computes (plan/sweep.py, compare/variants.py pass a module-level function and its plain-dict inputs).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from simulator.errors import ServesimError

RAY_HINT = "pip install 'servesim[ray]'"


def cache_dir() -> Path:
    """servesim's cache folder (resumable sweep stores): $SERVESIM_CACHE_DIR if set, else
    $XDG_CACHE_HOME/servesim, else ~/.cache/servesim (the XDG Base Directory default), so runs never
    leave folders in the directory they were started from. Not created here."""
    if os.environ.get("SERVESIM_CACHE_DIR"):
        return Path(os.environ["SERVESIM_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return root / "servesim"


def canonical_json(obj) -> str:
    """Key-sorted, whitespace-free JSON; inf/NaN are written as Infinity/NaN (Python's spelling)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_hash(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


class SweepStore:
    """A folder of `<hash>.json` files, one per finished task."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.clean_tmp()

    def clean_tmp(self) -> int:
        """Remove `*.tmp` files a killed writer left behind; returns how many."""
        removed = 0
        if self.root.is_dir():
            for p in self.root.glob("*.tmp"):
                try:
                    p.unlink()
                    removed += 1
                except OSError:
                    pass
        return removed

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str) -> dict | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            record = json.loads(p.read_bytes().decode("utf-8"))
        except (ValueError, OSError):  # not ours (writes are atomic): say so, recompute it
            record = None
        if not isinstance(record, dict):
            print(f"servesim: warning: store entry {p} is unreadable; recomputing it", file=sys.stderr)
            return None
        return record

    def save(self, key: str, record: dict) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(record, indent=1) + "\n")  # key order kept: resumed == fresh
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path(key)


def default_jobs(num_tasks: int) -> int:
    return max(1, min(os.cpu_count() or 1, num_tasks))


def run_tasks(fn: Callable[[dict], dict], tasks: list[dict], *, on_done: Callable[[int, dict], None],
              backend: str = "local", jobs: int | None = None, ray_address: str | None = None) -> None:
    """Run fn(task) for every task; on_done(index, result) is called in this process as each ends
    (in completion order), so the caller can store results as soon as they exist."""
    if not tasks:
        return
    if backend == "ray":
        _run_ray(fn, tasks, on_done, ray_address)
        return
    if backend != "local":
        raise ServesimError(f"backend={backend!r} is invalid; allowed: local, ray")
    jobs = jobs or default_jobs(len(tasks))
    if jobs < 1:
        raise ServesimError(f"jobs={jobs} is invalid; allowed: an integer >= 1")
    if jobs == 1 or len(tasks) == 1:
        for i, task in enumerate(tasks):
            on_done(i, fn(task))
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        previous = _install_sigterm(pool)
        try:
            futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            for fut in as_completed(futures):
                on_done(futures[fut], fut.result())
        except BaseException:  # Ctrl-C, SIGTERM or a failed task: drop what has not started
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


# ---- no orphaned workers ----

PR_SET_PDEATHSIG = 1
WATCHDOG_PERIOD_S = 0.5


def _worker_init(parent_pid: int) -> None:
    """In each pool worker: die with the parent. On Linux the kernel sends SIGTERM when the parent
    exits (prctl PR_SET_PDEATHSIG); everywhere a daemon thread also polls for the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the pool
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    start_ppid = os.getppid()
    if not _alive(parent_pid):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, start_ppid), daemon=True,
                     name="servesim-parent-watchdog").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(parent_pid: int, start_ppid: int) -> None:
    import time

    while True:
        time.sleep(WATCHDOG_PERIOD_S)
        if os.getppid() != start_ppid or not _alive(parent_pid):
            os._exit(1)


def _install_sigterm(pool: ProcessPoolExecutor):
    """SIGTERM in the parent: terminate the pool's workers and exit 143 (128 + SIGTERM). Returns the
    previous handler, or None where one cannot be installed (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum, frame):
        _terminate_workers(pool)
        raise SystemExit(128 + signal.SIGTERM)

    try:
        return signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:
        return None


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        try:
            p.terminate()
        except (OSError, AttributeError, ValueError):
            pass
    for p in procs:
        try:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
        except (OSError, AttributeError, ValueError, AssertionError):
            pass


def import_ray():
    try:
        import ray
    except ImportError:
        raise ServesimError(f"--ray needs the ray package: {RAY_HINT}") from None
    return ray


def _run_ray(fn, tasks: list[dict], on_done, address: str | None) -> None:
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="warning")
        started = True
    try:
        remote = ray.remote(num_cpus=1)(fn)
        index = {remote.remote(task): i for i, task in enumerate(tasks)}
        pending = list(index)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            on_done(index[done[0]], ray.get(done[0]))
    finally:
        if started:
            ray.shutdown()
