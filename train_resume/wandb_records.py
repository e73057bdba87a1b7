"""Read W&B's offline transaction logs (``run-<id>.wandb``) without a W&B server.

The file is W&B's LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1,
version 0), then 32 KiB blocks of records, each ``crc32 (4) | length (2, little
endian) | type (1) | data``; a record longer than its block is split into FIRST,
MIDDLE... LAST pieces; fewer than 7 bytes left in a block are zero padding. The data
of a whole record is a ``wandb_internal_pb2.Record`` (W&B's own protobuf definition).

SIGKILL leaves such files cut: W&B writes them in 32 KiB blocks, so a killed run's
file may hold its header only, or end inside a record. ``scan`` says which, and how
far the complete records go.

    python -m train_resume.wandb_records FILE...

prints, for each FILE, the fields bin/train-resume's sync plan reads (each ended by
the byte 0x01): path, run id, start time (seconds, or empty), status (ok, header-only,
empty, truncated, not-wandb), history rows, first and last train/global_step, last
_step, size in bytes, the offset where the complete records end; exit status 3 when
wandb cannot be imported (its protobufs read the records). The files come out
grouped by the run id of their name, each run's segments in the order W&B puts them
one after the other (``segment_key``: the one place that order is decided; the
callback's replay check uses it too). What to do with them (which folders go in which
``wandb sync`` call) is decided in lib/wandb_resume/sync.bash.
"""

import glob
import json
import os
import struct
import sys

from train_resume import log

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
GLOBAL_STEP = "train/global_step"  # the x-axis transformers' WandbCallback defines


class Scan:
    """What a .wandb file holds: status, the complete records' bytes, where they end."""

    def __init__(self, path):
        self.path = str(path)
        self.status = "ok"
        self.records = []  # the data of each complete record, in order
        self.end = 0  # the offset where the complete records end
        self.size = 0


def scan(path):
    """Split a .wandb file into its complete records. Never raises on a cut file."""
    result = Scan(path)
    with open(path, "rb") as f:
        data = f.read()
    result.size = len(data)
    if len(data) == 0:
        result.status = "empty"
        return result
    if data[: len(HEADER)] != HEADER:
        result.status = "not-wandb" if len(data) >= len(HEADER) else "truncated"
        return result
    result.end = len(HEADER)
    _assemble(result, data)
    result.status = _status(result, data)
    return result


def _pieces(data):
    """The record pieces of DATA after its header, in order: (kind, bytes, the offset
    after the piece), up to the first one cut short, zeros (nothing more was written),
    or not a piece of a record."""
    pos = len(HEADER)
    while pos < len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:  # padding to the next block
            pos += left_in_block
            continue
        if pos + 7 > len(data):
            return  # a header cut short
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0 and length == 0:  # zeros: nothing more was written
            return
        if pos + 7 + length > len(data) or kind not in (FULL, FIRST, MIDDLE, LAST):
            return
        pos += 7 + length
        yield kind, data[pos - length : pos], pos


def _assemble(result, data):
    """Join DATA's pieces into RESULT's complete records (a FULL one, or FIRST, MIDDLE...
    LAST), RESULT.end after the last complete one."""
    pieces = []
    for kind, chunk, pos in _pieces(data):
        if kind == FULL:
            pieces = []
            result.records.append(chunk)
            result.end = pos
        elif kind == FIRST:
            pieces = [chunk]
        elif kind == MIDDLE and pieces:
            pieces.append(chunk)
        elif kind == LAST and pieces:
            result.records.append(b"".join(pieces) + chunk)
            pieces = []
            result.end = pos


def _status(result, data):
    """ok, header-only (no complete record) or truncated (bytes after the last one)."""
    if not result.records and result.end == len(HEADER) == len(data):
        return "header-only"
    if result.end < len(data) and any(data[result.end :]):
        return "truncated"
    return "ok" if result.records else "header-only"


def records(path):
    """The complete records of a .wandb file, parsed with W&B's own protobuf classes."""
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for raw in scan(path).records:
        record = pb.Record()
        record.ParseFromString(raw)
        out.append(record)
    return out


def _value(item):
    if item.value_json:
        try:
            return json.loads(item.value_json)
        except ValueError:
            return item.value_json
    return None


def history(path):
    """The history rows of a .wandb file: [{"_step": N, key: value, ...}] in order."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row = {"_step": record.history.step.num}
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            if key == "_step":
                row["_step"] = int(_value(item))
            else:
                row[key] = _value(item)
        rows.append(row)
    return rows


def run_record(path):
    """The run record (id, project, start time, resumed...) of a .wandb file, or None."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run
    return None


def config(path):
    """The run's config as the file's run and config records set it: {key: value}."""
    out = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        items = record.run.config.update if kind == "run" else None
        if kind == "config":
            items = record.config.update
        for item in items or ():
            key = item.key or "/".join(item.nested_key)
            out[key] = json.loads(item.value_json)
    return out


def facts(path):
    """The fields the sync plan reads (see the module's docstring)."""
    result = scan(path)
    run_id = start = ""
    steps, rows, last_step = [], 0, ""
    if result.records:
        from wandb.proto import wandb_internal_pb2 as pb

        for raw in result.records:
            record = pb.Record()
            record.ParseFromString(raw)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run_id = record.run.run_id
                start = _start(record.run.start_time)
            elif kind == "history":
                rows += 1
                last_step = str(record.history.step.num)
                for item in record.history.item:
                    key = item.key or "/".join(item.nested_key)
                    if key == GLOBAL_STEP:
                        steps.append(int(float(item.value_json)))
                    elif key == "_step":
                        last_step = item.value_json
    first = str(min(steps)) if steps else ""
    last = str(max(steps)) if steps else ""
    return [
        result.path,
        run_id,
        start,
        result.status,
        str(rows),
        first,
        last,
        last_step,
        str(result.size),
        str(result.end),
    ]


def segment_key(start, folder):
    """The order of one run's offline segments, as `wandb sync` must append them: by
    the run record's start time (START: "seconds.nanos" or "" when the file holds no
    run record; those last), then by FOLDER name."""
    if not start:
        return (1, 0, 0, folder)
    seconds, _, nanos = start.partition(".")
    return (0, int(seconds), int(nanos or 0), folder)


def _start(ts):
    return f"{ts.seconds}.{ts.nanos:09d}" if ts.seconds else ""


def run_segments(wandb_dir, run_id, own_folder=None):
    """The offline segments of RUN_ID in WANDB_DIR (their run folders; OWN_FOLDER left
    out), in the order `wandb sync` must append them (segment_key; the order `python -m
    train_resume.wandb_records` prints for lib/wandb_resume/sync.bash): a list of
    (folder, its run record, its complete records)."""
    from pathlib import Path

    own = Path(own_folder).resolve() if own_folder else None
    found = []
    for data in Path(wandb_dir).glob(
        f"*run-*-{glob.escape(run_id)}*/run-{glob.escape(run_id)}.wandb"
    ):
        if own is not None and data.parent.resolve() == own:
            continue
        recs = records(data)
        run = next((r.run for r in recs if r.WhichOneof("record_type") == "run"), None)
        if run is None or run.run_id != run_id:
            continue
        key = segment_key(_start(run.start_time), data.parent.name)
        found.append((key, data.parent, run, recs))
    found.sort(key=lambda f: f[0])
    return [(folder, run, recs) for _key, folder, run, recs in found]


def _global_steps(recs):
    """The train/global_step values of the history rows in RECS."""
    for r in recs:
        if r.WhichOneof("record_type") != "history":
            continue
        for item in r.history.item:
            if (item.key or "/".join(item.nested_key)) == GLOBAL_STEP:
                yield int(float(item.value_json))


def earlier_segments(wandb_dir, run_id, own_folder):
    """What the earlier offline segments of RUN_ID in WANDB_DIR hold, as `wandb sync`
    (in start-time order, complete records only) would upload them.

    Returns (max train/global_step logged or None, the server _step the next row of a
    plain resume gets, the number of segments read). A segment that was itself a
    rewind (``resume_from``) already numbers its rows as the server will; a plain
    resumed one is appended after the rows before it.
    """
    segments = run_segments(wandb_dir, run_id, own_folder)
    max_step, next_step = None, 0
    for _folder, run, recs in segments:
        steps = [r.history.step.num for r in recs if r.WhichOneof("record_type") == "history"]
        rewound = run.branch_point.run == run_id and run.branch_point.metric == "_step"
        offset = 0 if rewound else next_step
        if steps:
            next_step = offset + max(steps) + 1
        logged = max(_global_steps(recs), default=None)
        if logged is not None:
            max_step = logged if max_step is None else max(max_step, logged)
    return max_step, next_step, len(segments)


def _name_id(path):
    """The run id in a file name run-<id>.wandb."""
    name = os.path.basename(path)
    return name[4:-6] if name.startswith("run-") and name.endswith(".wandb") else name


NO_WANDB = 3  # main's exit status when wandb cannot be imported (sync.bash says so)


def main(argv):
    out = sys.stdout
    rows = []
    for path in argv:
        try:
            fields = facts(path)
        except ImportError as exc:  # the protobufs are wandb's: no traceback, one status
            if (exc.name or "").partition(".")[0] != "wandb":
                raise
            return NO_WANDB
        except OSError as exc:
            fields = [path, "", "", "unreadable", "0", "", "", "", "0", "0"]
            log(f"cannot read {path}: {exc}")
        folder = os.path.basename(os.path.dirname(path))
        rows.append(((_name_id(path), segment_key(fields[2], folder)), fields))
    rows.sort(key=lambda row: row[0])
    for _key, fields in rows:
        for field in fields:
            out.write(field.replace("\x00", "\x02").replace("\x01", "\x02") + "\x01")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
