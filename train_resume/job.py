"""The job's processes: every Python process of a job registers itself with it.

A decision exports TRAIN_RESUME_JOB (the job's key) and TRAIN_RESUME_JOB_DIR (the job
state dir of the output dir, lib/wandb_resume/job.bash). register(), called first
thing by train_resume.hook.activate() in every Python process of the job, creates
``$TRAIN_RESUME_JOB_DIR/procs/<pid>.<start>@<host>`` (``<start>``: the process's
start time, /proc/PID/stat field 22) holding the job key, and keeps a shared flock
on it for the life of the process (a descriptor not inherited by the programs it
runs); the file is removed at exit. The bash library counts a job alive while one
of its registered processes is (lib/wandb_resume/lock.bash): torchrun's workers,
in sessions of their own, keep the output dir's lock after their launcher is gone,
while a stray ``sleep &`` of a wrapper keeps nothing.

A process of a job that no longer owns the output dir (its launcher died, and
another job took the dir over before this process started) stops at once with
exit status 1: two jobs never train in one output dir.

Standard library only; nothing happens without TRAIN_RESUME_JOB_DIR.
"""

import atexit
import os
import time

from train_resume import log

_registered = {}  # pid -> (path, fd): the registration of this process


def host():
    """This host's name as the bash library writes it (os.uname().nodename, bytes
    other than [A-Za-z0-9._-] as _)."""
    name = os.fsencode(os.uname().nodename)
    keep = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
    return "".join(chr(b) if b in keep else "_" for b in name) or "unknown"


def start_time(pid="self"):
    """The start time of process PID (clock ticks after boot, /proc/PID/stat field 22)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rpartition(b")")[2].split()[19])


def register():
    """Register this process with the job (idempotent); see the module's doc."""
    job_dir, key = os.environ.get("TRAIN_RESUME_JOB_DIR"), os.environ.get("TRAIN_RESUME_JOB")
    pid = os.getpid()
    if not job_dir or not key or pid in _registered:
        return
    import fcntl

    from train_resume.layout import job_file

    try:
        path = os.path.join(job_file(job_dir, "PROCS_DIR"), f"{pid}.{start_time()}@{host()}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_size == 0:
            os.write(fd, f"{key}\n".encode())
    except OSError as err:
        log(f"⚠️ could not register this process with job {key} in {job_dir}: {err}")
        return
    _registered[pid] = (path, fd)
    atexit.register(_unregister)
    owner = _owner(job_dir)
    if owner and owner != key:
        owner = _owner(job_dir, under_mutex=True)  # (a claim that was taken back?)
    if owner and owner != key:
        _unregister()
        log(
            f"❌ this process belongs to job {key}, but the output dir now belongs to job "
            f"{owner} ({job_file(job_dir, 'JOB_FILE')}): the rest of job {key} is gone. "
            "Stopped here, so that two jobs never train in one output dir"
        )
        os._exit(1)  # (SystemExit cannot end a process from its sitecustomize)


def _owner(job_dir, under_mutex=False):
    """The key of the job that owns the output dir (None when unknown); UNDER_MUTEX: read
    while holding the job's mutex (waited for at most 30 s), so that a claim another
    job makes and takes back is not seen half way."""
    import fcntl

    from train_resume.layout import job_file

    fd = None
    try:
        if under_mutex:
            lock = job_file(job_dir, "LOCK_FILE")
            fd = os.open(lock, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            deadline = time.monotonic() + 30
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        with open(job_file(job_dir, "JOB_FILE"), encoding="utf-8", errors="replace") as f:
            return f.readline().split(" ", 1)[0].strip() or None
    except OSError:
        return None
    finally:
        if fd is not None:
            os.close(fd)


def _unregister():
    """Remove this process's registration (not a forked child's: it has its own pid)."""
    entry = _registered.pop(os.getpid(), None)
    if entry is None:
        return
    path, fd = entry
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)
