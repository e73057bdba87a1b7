"""The same decision in plain Python (json.load + os.scandir): the benchmark's yardstick.
It checks the same files as the decision (trainer_state.json whole, the weights' and
torch files' few bytes), so that the comparison is fair.

Not part of the product (the decision lives in lib/wandb_resume.sh); this is only what
a straightforward Python launcher would cost. Prints the JSON of --explain --json.
"""

import json
import os
import re
import sys


def complete(path, step):
    try:
        with open(os.path.join(path, "trainer_state.json")) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(state, dict) and state.get("global_step") == step):
        return None
    return state if weights_whole(path) else None


def weights_whole(path):
    """The files a resume loads, read as the decision reads them (a few bytes each):
    a safetensors header whose data ends where the file does, and the end record of
    each of torch's zip files (optimizer, scheduler, RNG state, training args)."""
    try:
        names = os.listdir(path)
        if "model.safetensors" not in names:
            return False
        with open(os.path.join(path, "model.safetensors"), "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
            size = os.fstat(f.fileno()).st_size
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        if not ends or 8 + n + max(ends) != size:
            return False
        for name in names:
            if name.endswith((".pt", ".pth", ".bin")):
                with open(os.path.join(path, name), "rb") as f:
                    f.seek(-22, os.SEEK_END)
                    if f.read(4) != b"PK\x05\x06":
                        return False
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False
    return True


def main(out):
    steps = sorted(
        (int(m.group(1)), e.path)
        for e in os.scandir(out)
        if (m := re.fullmatch(r"checkpoint-([1-9][0-9]*|0)", e.name))
    )
    for step, path in reversed(steps):
        state = complete(path, step)
        if state is not None:
            break
    else:
        print(json.dumps({"mode": "new"}))
        return
    run_id = None
    for wdir in (os.path.join(path, "wandb"), os.path.join(out, "wandb")):
        if not os.path.isdir(wdir):
            continue
        folders = [e for e in os.scandir(wdir) if re.match(r"(offline-)?run-\d{8}_\d{6}-", e.name)]
        latest = os.path.join(wdir, "latest-run")
        chosen = next((e for e in folders if os.path.samefile(e.path, latest)), None)
        chosen = chosen or max(folders, key=lambda e: e.name.split("run-", 1)[1])
        run_id = next(f.name[4:-6] for f in os.scandir(chosen.path) if f.name.endswith(".wandb"))
        break
    cb = state.get("stateful_callbacks", {}).get("WandbResumeCallback", {})
    run_id = run_id or cb.get("args", {}).get("wandb_run_id")
    print(json.dumps({"mode": "resume", "checkpoint": path, "run_id": run_id}))


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]))
