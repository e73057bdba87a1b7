"""make bench: time the full decision on synthetic trees; print one table. Then the
same without the save records of train_resume's callback (full parse), what
sourcing the library costs, and what the Python hand-off (the bootstrap) adds to
`python -c pass`, and what the tasks of one job starting at once pay (N = 8: one
decides, the others read its decision).

For each tree (bench/generate.py): `bin/train-resume --explain --json` against the
plain-Python reference of the same decision (bench/reference.py) and against `jq`
parsing the whole newest trainer_state.json; medians of several runs, peak memory
(the largest process of the run), ratios, and the process spawns of one decision.

    python bench/bench.py [RUNS] [DIR]   (DIR keeps the trees between runs)
"""

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_RESUME = ROOT / "bin" / "train-resume"
TARGETS = {"typical": "<= 1/3 of python3 -c pass", "huge": "<= 0.1 s, <= 20 MB", "wide": "<= 0.5 s"}


def measure(cmd, runs, env=None):
    """Median wall time (s) and peak RSS (MB, the largest process) of CMD over RUNS runs.
    The RSS comes from GNU time, which starts CMD from a small process of its own."""
    times, peak = [], 0.0
    timer = ["/usr/bin/time", "-f", "%M"] if os.path.exists("/usr/bin/time") else []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            [*timer, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed: {proc.stderr[-500:]!r}")
        if timer:
            peak = max(peak, int(proc.stderr.split()[-1]) / 1024)
    return statistics.median(times), peak


def spawns(cmd):
    """How many programs one run executes (execve calls that succeeded), via strace."""
    if not shutil.which("strace"):
        return "n/a"
    with tempfile.NamedTemporaryFile("r") as log:
        subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=execve", "-o", log.name, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return sum(1 for line in log if "execve(" in line and "= 0" in line)


def newest_state(tree):
    newest = max(tree.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    return newest / "trainer_state.json"


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    keep = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    tmp = tempfile.TemporaryDirectory()
    trees = keep or Path(tmp.name)
    if (trees / "wide").is_dir() and not (
        trees / "wide" / "checkpoint-1" / "optimizer.pt"
    ).exists():
        raise SystemExit(f"{trees}: trees made before they held weights; remove it")
    if not (trees / "wide").is_dir():
        print(f"generating the trees in {trees} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "generate.py"), str(trees)], check=True
        )
    for name in ("typical", "huge", "wide"):
        record_saves(trees / name)
    bare = shutil.which("python3") or sys.executable
    python_pass, _ = measure([bare, "-c", "pass"], runs)
    venv_pass, _ = measure([sys.executable, "-c", "pass"], runs)
    rows = []
    for name in ("typical", "huge", "wide"):
        tree = trees / name
        ours = [str(TRAIN_RESUME), "-q", "-o", str(tree), "--explain", "--json"]
        t, mem = measure(ours, runs)
        reference = [sys.executable, str(ROOT / "bench" / "reference.py"), str(tree)]
        ref_t, ref_mem = measure(reference, runs)
        jq_t, jq_mem = measure(["jq", ".global_step", str(newest_state(tree))], max(1, runs // 2))
        rows.append((name, t, mem, spawns(ours), ref_t, ref_mem, jq_t, jq_mem))
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"python {platform.python_version()}, jq {jq_version()}; {runs} runs each, medians"
    )
    print(
        f"`python3 -c pass` ({bare}): {python_pass * 1000:.0f} ms; "
        f"the venv's python: {venv_pass * 1000:.0f} ms\n"
    )
    head = "| tree | train-resume | peak MB | spawns | Python reference | peak MB "
    head += "| jq on the whole state | peak MB | reference / ours | target |"
    print(head)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, t, mem, n, ref_t, ref_mem, jq_t, jq_mem in rows:
        print(
            f"| {name} | {t * 1000:.0f} ms | {mem:.1f} | {n} | {ref_t * 1000:.0f} ms "
            f"| {ref_mem:.1f} | {jq_t * 1000:.0f} ms | {jq_mem:.1f} | {ref_t / t:.1f} "
            f"| {TARGETS[name]} |"
        )
    print(f"\ntypical / `python3 -c pass` = {rows[0][1] / python_pass:.2f} (target <= 0.33)")
    print_unrecorded_cost(trees, runs)
    print_job_cost(trees, runs)
    print_source_cost(runs)
    print_bootstrap_cost(runs)
    print_weights_cost(runs)


def record_saves(tree):
    """Record every checkpoint of TREE as saved, as train_resume's callback does right
    after each save of a run (OUTPUT_DIR/.train-resume/saved/checkpoint-N)."""
    if (tree / ".train-resume" / "saved").is_dir():
        return
    sys.path.insert(0, str(ROOT))
    from train_resume.callback import record_save

    for checkpoint in tree.glob("checkpoint-*"):
        record_save(str(checkpoint))


def print_unrecorded_cost(trees, runs):
    """The same decision without the save records (checkpoints of a run made without
    train_resume's callback): the newest trainer_state.json gets a full parse."""
    parts = []
    for name in ("typical", "huge"):
        tree = trees / name
        records = tree / ".train-resume"
        aside = trees / f".{name}-records-aside"
        records.rename(aside)
        try:
            ours = [str(TRAIN_RESUME), "-q", "-o", str(tree), "--explain", "--json"]
            t, mem = measure(ours, max(1, runs // 2) if name == "huge" else runs)
        finally:
            aside.rename(records)
        parts.append(f"{name} {t * 1000:.0f} ms, {mem:.1f} MB")
    print(
        "without save records (a run without train_resume's callback; the newest state "
        "parsed whole): " + "; ".join(parts)
    )


def run_tasks(cmd, jobs, env):
    """Start one process of CMD per (SLURM job id, task id) in JOBS at once, as srun
    starts a step's tasks; returns [(seconds, stderr)] per task, each from its own start
    to its own end."""
    started = []
    for job, task in jobs:
        task_env = dict(env, SLURM_JOB_ID=str(job), SLURM_STEP_ID="0", SLURM_PROCID=str(task))
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, env=task_env, stdout=subprocess.DEVNULL, stderr=log)
        started.append((time.perf_counter(), proc, log))
    ended = [None] * len(started)
    while None in ended:
        for i, (start, proc, _) in enumerate(started):
            if ended[i] is None and proc.poll() is not None:
                ended[i] = time.perf_counter() - start
        time.sleep(0.001)
    results = []
    for (_, proc, log), seconds in zip(started, ended):
        log.seek(0)
        stderr = log.read().decode(errors="replace")
        log.close()
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed: {stderr[-500:]!r}")
        results.append((seconds, stderr))
    return results


def print_job_cost(trees, runs, n=8):
    """What the lock and the shared decision cost the tasks of one job that start at
    once (srun -n N, on the typical tree): `train-resume -o TREE -- true` as task 0..N-1
    of one SLURM job (a new job each run, so that one task decides and the others use
    its decision), against one task alone (it decides), one task that finds the
    decision made (it reads), and N tasks of N different jobs with --no-lock (each
    decides; the lock would refuse them)."""
    tree = trees / "typical"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TRAIN_RESUME_"))}
    cmd = [str(TRAIN_RESUME), "-o", str(tree), "--", "true"]
    unlocked = [str(TRAIN_RESUME), "-o", str(tree), "--no-lock", "--", "true"]
    base = 700000 + os.getpid() % 1000 * 100
    alone, reader, per_task, makespan, free, readers = [], [], [], [], [], 0
    for r in range(runs):
        job = base + r
        ((t, _),) = run_tasks(cmd, [(job, 0)], env)
        alone.append(t)
        ((t, log),) = run_tasks(cmd, [(job, 1)], env)
        assert "🤝" in log, log
        reader.append(t)
        results = run_tasks(cmd, [(job + runs, i) for i in range(n)], env)
        per_task += [t for t, _ in results]
        makespan.append(max(t for t, _ in results))
        readers += sum("🤝" in log for _, log in results)
        others = [(job + 2 * runs + i, 0) for i in range(n)]
        free += [t for t, _ in run_tasks(unlocked, others, env)]
    med = statistics.median
    print(
        f"tasks of one job (typical tree): one alone (decides) {med(alone) * 1000:.0f} ms; "
        f"one that finds the decision made (reads it) {med(reader) * 1000:.0f} ms; "
        f"N={n} at once: per task {med(per_task) * 1000:.0f} ms median, "
        f"{max(per_task) * 1000:.0f} ms max, all done in {med(makespan) * 1000:.0f} ms; "
        f"{readers} of {n * runs} tasks used the decision one task of their job made; "
        f"N={n} at once with --no-lock (each decides): per task "
        f"{med(free) * 1000:.0f} ms median, {max(free) * 1000:.0f} ms max"
    )


def print_weights_cost(runs, loops=50):
    """The cost of the weights checks (weights.bash): a decision over a real full
    save, a real sharded one and a real PEFT adapter (tests/fixtures/saves), and the
    checks of that one checkpoint alone (LOOPS calls of wandb_resume::_check_weights
    in one bash, less an empty loop of the same length)."""
    saves = ROOT / "tests" / "fixtures" / "saves"
    if not saves.is_dir():
        return
    lib = str(ROOT / "lib" / "wandb_resume.sh")
    body = 'source "$1"; shopt -s nullglob extglob; for ((i = 0; i < $3; i++)); do {}; done'
    check = 'wandb_resume::_check_weights "$2" || exit 1'
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("full", "sharded", "adapter"):
            out = Path(tmp) / kind
            shutil.copytree(saves / kind, out)
            ckpt = str(out / "checkpoint-2")
            decision, _ = measure([str(TRAIN_RESUME), "-o", str(out), "-n", "-q"], runs)
            full, _ = measure(["bash", "-c", body.format(check), "_", lib, ckpt, str(loops)], runs)
            empty, _ = measure(["bash", "-c", body.format(":"), "_", lib, ckpt, str(loops)], runs)
            files = sum(1 for _ in (out / "checkpoint-2").iterdir())
            parts.append(
                f"{kind} ({files} files): {decision * 1000:.1f} ms, of which the checks "
                f"{(full - empty) / loops * 1000:.1f} ms"
            )
    print("decision with the weights checks: " + "; ".join(parts))


# The library as one file, before it was split into lib/wandb_resume/*.bash.
SINGLE_FILE_COMMIT = "45dda7e"


def source_cost(library, runs, loops=200):
    """Median time (ms) for bash to source LIBRARY once (LOOPS sources in one bash,
    less an empty loop of the same length)."""
    body = "for ((i = 0; i < $2; i++)); do {}; unset _WANDB_RESUME_LOADED; done"
    full, _ = measure(["bash", "-c", body.format('source "$1"'), "_", library, str(loops)], runs)
    empty, _ = measure(["bash", "-c", body.format(":"), "_", library, str(loops)], runs)
    return (full - empty) / loops * 1000


def print_source_cost(runs):
    """The cost of `source lib/wandb_resume.sh`: now (split in parts) and as one file."""
    now = source_cost(str(ROOT / "lib" / "wandb_resume.sh"), runs)
    line = f"source lib/wandb_resume.sh: {now:.2f} ms (split into lib/wandb_resume/*.bash)"
    old = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{SINGLE_FILE_COMMIT}:lib/wandb_resume.sh"],
        capture_output=True,
        text=True,
    )
    if old.returncode == 0:
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as single:
            single.write(old.stdout)
            single.flush()
            before = source_cost(single.name, runs)
        line += f"; as one file ({SINGLE_FILE_COMMIT}): {before:.2f} ms"
    print(line)


def print_bootstrap_cost(runs, loops=20):
    """What the Python hand-off costs a process that never imports transformers:
    `python -c pass` without and with the bootstrap on PYTHONPATH (as a decision puts it,
    resuming), medians of max(RUNS, LOOPS) runs each, interleaved."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_RESUME_", "PYTHON"))}
    with_boot = dict(env, TRAIN_RESUME_CHECKPOINT="/nowhere/checkpoint-2")
    with_boot["PYTHONPATH"] = f"{ROOT / 'train_resume' / 'bootstrap'}{os.pathsep}{ROOT}"
    cmd = [sys.executable, "-c", "pass"]
    n = max(runs, loops)
    bare, boot, job = [], [], []
    # ... and registering with a job (train_resume/job.py), as in a decision's job
    with tempfile.TemporaryDirectory() as job_dir:
        (Path(job_dir) / "procs").mkdir()
        (Path(job_dir) / "job").write_text("pid-1.1@bench bench 1 0\n")
        with_job = dict(with_boot, TRAIN_RESUME_JOB="pid-1.1@bench", TRAIN_RESUME_JOB_DIR=job_dir)
        for _ in range(n):
            bare.append(measure(cmd, 1, env)[0])
            boot.append(measure(cmd, 1, with_boot)[0])
            job.append(measure(cmd, 1, with_job)[0])
    bare_t, boot_t, job_t = (statistics.median(t) for t in (bare, boot, job))
    print(
        f"python -c pass: {bare_t * 1000:.1f} ms; with the bootstrap (train_resume/bootstrap "
        f"first on PYTHONPATH): {boot_t * 1000:.1f} ms (+{(boot_t - bare_t) * 1000:.1f} ms); "
        f"and registering with the job (TRAIN_RESUME_JOB_DIR): {job_t * 1000:.1f} ms "
        f"(+{(job_t - bare_t) * 1000:.1f} ms; median of {n} each, interleaved)"
    )


def jq_version():
    return subprocess.run(["jq", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
