"""What the bash library and the Python side share, read from its one definition.

``lib/wandb_resume/shared.env``, beside the library's parts, defines the names both
sides use: the ``.train-resume/`` layout (STATE_DIR, SAVED_DIR, FAILED_DIR, ENDED_FILE;
the job state dir's LOCK_FILE, JOB_FILE, PROCS_DIR), the default stop signals
(STOP_SIGNALS) and the end record's reasons (ENDED_STOPPED, ENDED_FINISHED). One
``NAME=VALUE`` a line, ``#`` comments; nothing in it is ever executed. It is found where
the library is (``find``: beside this package in a clone or an install's
share/train-resume copy, the installed data files, then ``train-resume --lib``) and read
once, on first use: importing this module reads nothing (the bootstrap stays cheap).

A Python side without that file (an install that lost the library) cannot name the
records: ``MissingDefinitions`` (an OSError, which the writers of records report as a
warning without stopping training).
"""

import os

LIBRARY = "wandb_resume.sh"  # lib/wandb_resume.sh: the library's entry point
SHARED = os.path.join("wandb_resume", "shared.env")  # lib/wandb_resume/shared.env
_defs = {}
_searched = {}  # relative path -> where it was found (None: nowhere)


class MissingDefinitions(OSError):
    """The shared definitions (lib/wandb_resume/shared.env) cannot be found or read."""


def _library_dirs():
    """The folders that may hold the library (lib/), in the order they are tried: beside
    the package this module was imported from (a clone, make install, the copy pip puts
    in <env>/share/train-resume, an editable install's clone), then the installed data
    files (<env>/share/train-resume/lib)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    yield os.path.join(here, "lib")
    import sysconfig

    for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user"):
        try:
            data = sysconfig.get_path("data", scheme)
        except KeyError:
            continue
        yield os.path.join(data, "share", "train-resume", "lib")


def _from_command(relative):
    """RELATIVE in the library `train-resume --lib` (on PATH) names, or None."""
    import subprocess

    try:
        done = subprocess.run(["train-resume", "--lib"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    path = os.path.join(os.path.dirname(done.stdout.strip()), relative)
    return path if done.returncode == 0 and os.path.isfile(path) else None


def find(relative):
    """The path of RELATIVE (a file of the library, relative to its lib/ folder: LIBRARY,
    SHARED) in the first library that has it, or None; searched once."""
    if relative not in _searched:
        paths = (os.path.join(folder, relative) for folder in _library_dirs())
        found = next((p for p in paths if os.path.isfile(p)), None)
        _searched[relative] = found or _from_command(relative)
    return _searched[relative]


def parse(text):
    """NAME -> VALUE of a shared.env text (empty lines and # comments left out)."""
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    return dict(line.split("=", 1) for line in lines if "=" in line)


def definitions():
    """NAME -> VALUE of the shared definitions, read once; MissingDefinitions when they
    cannot be found or read."""
    if not _defs:
        path = find(SHARED)
        if path is None:
            raise MissingDefinitions(
                f"cannot find train-resume's shared definitions (lib/{SHARED}, beside "
                f"the bash library): reinstall train-resume"
            )
        try:
            with open(path, encoding="utf-8") as f:
                _defs.update(parse(f.read()))
        except (OSError, ValueError) as err:
            raise MissingDefinitions(f"cannot read {path}: {err}") from err
    return _defs


def name(key):
    """The value of KEY in the shared definitions (MissingDefinitions when it has none)."""
    value = definitions().get(key)
    if not value:
        raise MissingDefinitions(f"{find(SHARED)} defines no {key}")
    return value


def state_dir(output_dir):
    """OUTPUT_DIR/.train-resume: the records of OUTPUT_DIR's checkpoints and its end."""
    return os.path.join(output_dir, name("STATE_DIR"))


def saved_dir(output_dir):
    """Where the save records of OUTPUT_DIR's checkpoints go (the callback writes them)."""
    return os.path.join(state_dir(output_dir), name("SAVED_DIR"))


def failed_dir(output_dir):
    """Where the failed-load records of OUTPUT_DIR's checkpoints go (the hook writes them)."""
    return os.path.join(state_dir(output_dir), name("FAILED_DIR"))


def ended_file(output_dir):
    """The record of how training in OUTPUT_DIR ended (the callback writes it)."""
    return os.path.join(state_dir(output_dir), name("ENDED_FILE"))


def job_file(job_dir, key):
    """The file KEY (LOCK_FILE, JOB_FILE, PROCS_DIR) of the job state dir JOB_DIR."""
    return os.path.join(job_dir, name(key))


def end_reasons():
    """The end record's reasons: (a stop on a stop signal, reached max_steps, ran its
    epochs, stopped by should_training_stop): ENDED_STOPPED, then ENDED_FINISHED's three
    in their order."""
    finished = name("ENDED_FINISHED").split(",")
    if len(finished) != 3:
        raise MissingDefinitions(f"{find(SHARED)}: ENDED_FINISHED is not three reasons")
    return (name("ENDED_STOPPED"), *finished)
