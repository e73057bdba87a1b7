"""Which failed loads of a checkpoint are remembered (a failed-load record).

The hook (train_resume/hook.py) records a checkpoint the trainer failed to load, and
the next decision passes it over for the one before. That is right when the failure
is the checkpoint's own: it would fail the same way next time (a truncated or
damaged file, a shape mismatch). It is wrong when the failure may be transient or
belongs to the machine, not the checkpoint: an I/O error (EIO), a stale NFS handle
(ESTALE), a lost file system (ENOTCONN, ENODEV), a timeout, too many open files, a
collective of the job's other processes failing, or a permission problem (the
decision itself refuses an unreadable checkpoint, with owner and mode). Such a
failure is not recorded: the start fails (the error is raised as it was), and the
next start, a requeue, tries the same checkpoint again. If it keeps failing, every
start says so; nothing walks the run back one checkpoint per blip.

``to_record(checkpoint, exc)`` is the one question the hook asks. Standard library
only; imports neither transformers nor torch.
"""

import errno
import os
import re

from train_resume import log
from train_resume import where as rank_where

# errno values of failures that may pass, or belong to the machine, not the checkpoint.
_TRANSIENT_NAMES = (
    "EIO",  # an I/O error: a disk, a network file system, a flaky controller
    "ESTALE",  # a stale NFS file handle (the file was replaced on another client)
    "EAGAIN",  # also EWOULDBLOCK
    "EINTR",
    "EBUSY",
    "ETIMEDOUT",
    "ENOTCONN",  # a FUSE or network mount that went away
    "ENODEV",
    "ENXIO",
    "ESHUTDOWN",
    "ENOLINK",
    "ECOMM",
    "EREMOTEIO",
    "ENOLCK",
    "ENOMEM",
    "ENOBUFS",
    "EMFILE",
    "ENFILE",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "ECONNABORTED",
    "ECONNRESET",
    "ECONNREFUSED",
)
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name) for name in _TRANSIENT_NAMES if hasattr(errno, name)
)
# A permission problem is the machine's too: the decision refuses such a checkpoint
# itself, naming owner and mode; recording it would send the next start to an older
# one, next to which the trainer would fail the same way.
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})

# Errors of the job's processes talking to each other (torch.distributed), and
# timeouts of any library: never about the checkpoint's bytes.
_TRANSIENT_TYPES = re.compile(r"Timeout|^Dist(Backend|Network|Store)?Error$")
# The errno an error message carries when only the message is left: Python's
# "[Errno 5] ...", Rust's io::Error (safetensors) "... (os error 5)".
_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]|\(os error (\d+)\)")


def _chain(exc):
    """EXC and the exceptions it was raised from or while handling (no cycles)."""
    seen = set()
    while exc is not None and id(exc) not in seen and len(seen) < 20:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _errnos(exc):
    """The errno values EXC states: its errno, and those in its message."""
    found = []
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        found.append(exc.errno)
    for match in _ERRNO_IN_TEXT.finditer(str(exc)):
        found.append(int(match.group(1) or match.group(2)))
    return found


def kind(exc):
    """How a load failure is judged: "transient" (it may pass, or belongs to the
    machine: not recorded), "permission" (not recorded: the decision refuses an
    unreadable checkpoint itself), or "deterministic" (the checkpoint's own: recorded).
    The whole chain counts (an EIO wrapped by the library that met it is an EIO)."""
    for e in _chain(exc):
        numbers = _errnos(e)
        if any(n in TRANSIENT_ERRNOS for n in numbers):
            return "transient"
        if isinstance(e, (TimeoutError, ConnectionError, InterruptedError, BlockingIOError)):
            return "transient"
        if _TRANSIENT_TYPES.search(type(e).__name__):
            return "transient"
        if isinstance(e, PermissionError) or any(n in PERMISSION_ERRNOS for n in numbers):
            return "permission"
    return "deterministic"


def _why(exc):
    """A short name for what made EXC transient or a permission problem."""
    for e in _chain(exc):
        for n in _errnos(e):
            if n in TRANSIENT_ERRNOS or n in PERMISSION_ERRNOS:
                return errno.errorcode.get(n, f"errno {n}")
    return type(exc).__name__


def describe(exc):
    """EXC in one line, as a failed-load record holds it: ``Type: message``."""
    message = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {message}"


def to_record(checkpoint, exc):
    """Should the failed load of CHECKPOINT (raised as EXC) be recorded? True for a
    deterministic failure; otherwise False, after one line saying why not."""
    judged = kind(exc)
    if judged == "deterministic":
        return True
    checkpoint = os.fspath(checkpoint)
    where = rank_where()
    line = describe(exc)
    if judged == "permission":
        log(
            f"❌ the trainer could not read {checkpoint}{where}: {line}. Not recorded as a "
            "broken checkpoint (a permission problem, not the checkpoint's): fix the "
            "permissions (ls -la, chmod, or run as the owner); the next start tries it again"
        )
    else:
        log(
            f"⚠️ loading {checkpoint} failed{where} with an error that may pass "
            f"({_why(exc)}): {line}. Not recorded as a broken checkpoint: the next start "
            "tries it again (if it keeps failing: check the file system, or name another "
            "with --checkpoint PATH)"
        )
    return False
