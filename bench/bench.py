"""make bench: time the full decision on synthetic trees; print one table. Then each
tree with and without the save records of train_resume's callback side by side,
interleaved with the Python reference and the real interpreter's `-c pass`, what
sourcing the library costs, and what the Python hand-off (the bootstrap) adds to
`python -c pass`, and what the tasks of one job starting at once pay (N = 8: one
decides, the others read its decision).

For each tree (bench/generate.py): `bin/train-resume --explain --json` against the
plain-Python reference of the same decision (bench/reference.py) and against `jq`
parsing the whole newest trainer_state.json; medians of several runs, peak memory
(the largest process of the run), ratios, and the process spawns of one decision.

    python bench/bench.py [RUNS] [DIR]   (DIR keeps the trees between runs)
"""

import contextlib
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
TARGETS = {  # issue 21
    "typical": "<= 0.5 x python -c pass, <= 5 programs",
    "huge": "<= 0.1 s, <= 20 MB",
    "wide": "<= the Python reference",
}
# How many of the newest checkpoints of each tree get a save record (None: all). The
# library checks each one it records (~50-150 ms for a small one): 10,000 would take
# a quarter of an hour. A decision reads no record but the one of the checkpoint it
# checks (the newest here), so the older ones would change nothing in it.
RECORDED = {"typical": None, "huge": None, "wide": 10}


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


def measure_against(bases, cmd, runs):
    """(median s and peak MB of CMD, [median s of each of BASES]) over RUNS runs of
    each, in turn."""
    cmd_times, base_times, peak = [], [[] for _ in bases], 0.0
    for _ in range(runs):
        for base, times in zip(bases, base_times):
            times.append(measure(base, 1)[0])
        t, mem = measure(cmd, 1)
        cmd_times.append(t)
        peak = max(peak, mem)
    return statistics.median(cmd_times), peak, [statistics.median(t) for t in base_times]


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
        # Under load strace splits a call in two lines ("execve(... <unfinished ...>",
        # then "<... execve resumed>) = 0"): the status is on the second.
        return sum(1 for line in log if "execve" in line and line.rstrip().endswith("= 0"))


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
        record_saves(trees / name, RECORDED[name])
    on_path, interpreter = python3_interpreter()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    shim_pass, _ = measure([on_path, "-c", "pass"], runs)
    rows = []
    for name in ("typical", "huge", "wide"):
        tree = trees / name
        ours = [str(TRAIN_RESUME), "-q", "-o", str(tree), "--explain", "--json"]
        if name == "typical":  # the ratio's terms, run in turn: the same load for each
            bases = [[interpreter, "-c", "pass"], [sys.executable, "-c", "pass"]]
            t, mem, (python_pass, venv_pass) = measure_against(bases, ours, runs)
        else:
            t, mem = measure(ours, runs)
        reference = [sys.executable, str(ROOT / "bench" / "reference.py"), str(tree)]
        ref_t, ref_mem = measure(reference, runs)
        jq_t, jq_mem = measure(["jq", ".global_step", str(newest_state(tree))], max(1, runs // 2))
        rows.append((name, t, mem, spawns(ours), ref_t, ref_mem, jq_t, jq_mem))
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"python {platform.python_version()}, jq {jq_version()}; {runs} runs each, medians"
    )
    shim = ""
    if on_path != interpreter:
        shim = f"; through `python3` on PATH, {on_path} (a launcher: a pyenv shim?): "
        shim += f"{shim_pass * 1000:.0f} ms"
    print(
        f"`python3 -c pass`, the interpreter itself ({interpreter}): "
        f"{python_pass * 1000:.0f} ms{shim}; the venv's python ({sys.executable}, its "
        f"own site-packages): {venv_pass * 1000:.0f} ms (both run in turn with the typical tree)"
    )
    print(f"load average at the start: {load}\n")
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
    print(
        f"\ntypical / `python3 -c pass` (the interpreter itself) = "
        f"{rows[0][1] / python_pass:.2f} (target <= 0.5); / the venv's python -c pass = "
        f"{rows[0][1] / venv_pass:.2f}"
    )
    print_paths(trees, runs, interpreter)
    print_floor(trees, runs, interpreter)
    print_job_cost(trees, runs)
    print_source_cost(runs)
    print_bootstrap_cost(runs)
    print_pth_cost(runs)
    print_weights_cost(runs)


def python3_interpreter():
    """(`python3` as found on PATH, the interpreter it runs). A launcher such as a
    pyenv shim (a shell script that picks a version, then execs it) costs tens of ms
    of its own: timings are divided by the interpreter's start, not the shim's."""
    on_path = shutil.which("python3") or sys.executable
    real = subprocess.run(
        [on_path, "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return on_path, os.path.realpath(real or on_path)


def record_saves(tree, newest=None):
    """Record the checkpoints of TREE (the NEWEST ones, else all) as saved, with what
    train_resume's callback runs right after each save of a run (wandb_resume::record_save:
    the library checks each and writes OUTPUT_DIR/.train-resume/saved/checkpoint-N).
    Records of an older format (trees kept from an earlier bench) are written again."""
    checkpoints = sorted(tree.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    checkpoints = checkpoints[-newest:] if newest else checkpoints
    record = tree / ".train-resume" / "saved" / checkpoints[-1].name
    if record.is_file() and record.read_text().startswith("train-resume-save-record 2\n"):
        return
    script = 'source "$1" && shift && wandb_resume::record_save "$@"'
    lib = str(ROOT / "lib" / "wandb_resume.sh")
    subprocess.run(["bash", "-c", script, "_", lib, *map(str, checkpoints)], check=True)


def interleaved(cmds, runs, envs=None):
    """Median wall time (s) and peak RSS (MB) of each command of CMDS (each under its
    environment of ENVS, default ours), run in turn RUNS times (one of each, then again):
    load on the machine weighs on all of them alike."""
    envs = envs or [None] * len(cmds)
    times, peaks = [[] for _ in cmds], [0.0 for _ in cmds]
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            t, mem = measure(cmd, 1, envs[i])
            times[i].append(t)
            peaks[i] = max(peaks[i], mem)
    return [(statistics.median(t), peak) for t, peak in zip(times, peaks)]


@contextlib.contextmanager
def records_aside(tree, aside):
    """With ASIDE, TREE's save records (.train-resume/) are moved away meanwhile: its
    checkpoints look as a run without train_resume's callback leaves them."""
    records, away = tree / ".train-resume", tree.parent / f".{tree.name}-records-aside"
    if aside:
        records.rename(away)
    try:
        yield
    finally:
        if aside:
            away.rename(records)


def print_paths(trees, runs, interpreter):
    """Each tree with and without the callback's save records, side by side: our
    decision, the Python reference over the same files and the interpreter's own
    `-c pass` (the interpreter python3 runs, never a shim), run in
    turn; the programs one decision starts; the load average before and after."""
    before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nrecord / no record, interleaved with the Python reference and `{interpreter} "
        f"-c pass` ({runs} rounds each; huge without records: {max(3, runs // 2)}):\n"
    )
    print(
        "| tree | save records | train-resume | peak MB | programs | Python reference "
        "| peak MB | reference / ours | `python -c pass` | ours / `python -c pass` |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("typical", "huge", "wide"):
        tree = trees / name
        ours = [str(TRAIN_RESUME), "-q", "-o", str(tree), "--explain", "--json"]
        reference = [interpreter, str(ROOT / "bench" / "reference.py"), str(tree)]
        for recorded in (True, False):
            n = runs if recorded or name != "huge" else max(3, runs // 2)
            with records_aside(tree, not recorded):
                (t, mem), (ref_t, ref_mem), (py_t, _) = interleaved(
                    [ours, reference, [interpreter, "-c", "pass"]], n
                )
                programs = spawns(ours)
            print(
                f"| {name} | {'yes' if recorded else 'no'} | {t * 1000:.0f} ms | {mem:.1f} "
                f"| {programs} | {ref_t * 1000:.0f} ms | {ref_mem:.1f} | {ref_t / t:.2f} "
                f"| {py_t * 1000:.0f} ms | {t / py_t:.2f} |"
            )
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average: {before} before, {after} after ({os.cpu_count()} cores)")


def print_floor(trees, runs, interpreter):
    """Where the typical decision under a save record spends its time, part by part, each
    run as a process of its own and all in turn (3 x RUNS rounds, medians): the shebang's
    env and bash; bin/train-resume --version (the library sourced, nothing decided); each
    of the three programs the decision starts (stat over the newest checkpoint's entries,
    the NUL grep, df); the decision; and `python -c pass`. What is left of the decision
    after the first two and the programs is its own bash work."""
    tree = trees / "typical"
    newest = max(tree.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    state = str(newest / "trainer_state.json")
    entries = [str(newest), *sorted(str(p) for p in newest.iterdir())]
    parts = {
        "env + bash": ["/usr/bin/env", "bash", "-c", ":"],
        "--version (+ the library)": [str(TRAIN_RESUME), "--version"],
        "stat": ["stat", "-L", "-c", "%s %i %.9Y %.9Z", "--", *entries],
        "grep (NULs)": ["grep", "-q", "-a", "-P", "\\x00", "--", state],
        "df": ["df", "-Pk", "--", str(tree)],
        "the decision": [str(TRAIN_RESUME), "-q", "-o", str(tree), "--explain", "--json"],
        "python -c pass": [interpreter, "-c", "pass"],
    }
    times = {name: [] for name in parts}
    for _ in range(3 * runs):
        for name, cmd in parts.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    programs = med["stat"] + med["grep (NULs)"] + med["df"]
    own = med["the decision"] - med["--version (+ the library)"] - programs
    print(
        "\nthe typical decision under a save record, part by part (each a process, all in "
        f"turn, {3 * runs} rounds, medians): "
        + "; ".join(f"{name} {ms:.1f} ms" for name, ms in med.items())
        + f"; so the three programs {programs:.1f} ms, the decision's own bash work "
        f"{own:.1f} ms; the decision / python -c pass = "
        f"{med['the decision'] / med['python -c pass']:.2f}"
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
    """The cost of `source lib/wandb_resume.sh`: now (split in parts), and the older,
    smaller library as one file (bash parses ~2 us a line: the code's size is the cost)."""
    now = source_cost(str(ROOT / "lib" / "wandb_resume.sh"), runs)
    line = (
        f"source lib/wandb_resume.sh: {now:.2f} ms (split into lib/wandb_resume/*.bash; "
        "usage, config, state, weights, sync, supervise, json and record are sourced "
        "when first used)"
    )
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
        line += (
            f"; the library of {SINGLE_FILE_COMMIT}, one file before the split (and "
            f"before issues 17-22 added to it: less code): {before:.2f} ms"
        )
    print(line)


def print_bootstrap_cost(runs, loops=100):
    """What the Python hand-off costs a process that never imports transformers:
    `python -c pass` without and with the bootstrap on PYTHONPATH (as a decision puts it,
    resuming), max(RUNS, LOOPS) pairs run one after the other: the medians of the
    pairs' differences in wall time and in CPU time (user + system: less moved by other
    load on the machine); and what `python -X importtime` reports for importing the
    bootstrap (sitecustomize, with train_resume.hook), median of as many runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_RESUME_", "PYTHON"))}
    with_boot = dict(env, TRAIN_RESUME_CHECKPOINT="/nowhere/checkpoint-2")
    with_boot["PYTHONPATH"] = f"{ROOT / 'train_resume' / 'bootstrap'}{os.pathsep}{ROOT}"
    n = max(runs, loops)
    cmd = [sys.executable, "-c", "pass"]
    bare, boot, job, imports = [], [], [], []
    # ... and registering with a job (train_resume/job.py), as in a decision's job
    with tempfile.TemporaryDirectory() as job_dir:
        (Path(job_dir) / "procs").mkdir()
        (Path(job_dir) / "job").write_text("pid-1.1@bench bench 1 0\n")
        with_job = dict(with_boot, TRAIN_RESUME_JOB="pid-1.1@bench", TRAIN_RESUME_JOB_DIR=job_dir)
        for _ in range(n):
            bare.append(run_once(cmd, env))
            boot.append(run_once(cmd, with_boot))
            job.append(run_once(cmd, with_job))
            imports.append(
                import_time([sys.executable, "-X", "importtime", "-c", "pass"], with_boot)
            )
    wall = statistics.median(b[0] - a[0] for a, b in zip(bare, boot)) * 1000
    cpu = statistics.median(b[1] - a[1] for a, b in zip(bare, boot)) * 1000
    job_wall = statistics.median(j[0] - a[0] for a, j in zip(bare, job)) * 1000
    print(
        f"python -c pass (the venv's): {statistics.median(a[0] for a in bare) * 1000:.1f} ms; "
        f"the bootstrap (train_resume/bootstrap first on PYTHONPATH, resuming) adds "
        f"{wall:+.1f} ms wall, {cpu:+.1f} ms CPU (medians of {n} pairs); importing it "
        f"(-X importtime: sitecustomize with train_resume.hook) takes "
        f"{statistics.median(imports):.1f} ms; with the registration with the job "
        f"(TRAIN_RESUME_JOB_DIR) too: {job_wall:+.1f} ms wall"
    )


def print_pth_cost(runs, loops=20):
    """What train-resume.pth (site-packages of an env where train-resume is installed)
    costs every interpreter of that env: the line site runs, timed in-process with no
    decision in force; and `python -c pass` with the hand-off made through it (a decision
    in force, PYTHONPATH without the bootstrap) against none, medians, interleaved."""
    import sysconfig

    pth = Path(sysconfig.get_path("purelib")) / "train-resume.pth"
    if not pth.exists():
        print(f"train-resume.pth: not installed in {sys.prefix} (make venv-ml installs it)")
        return
    line = pth.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_RESUME_", "PYTHON"))}
    # As site runs it: exec(line), compiling it each time.
    inert = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, timeit; print(min(timeit.repeat('exec(line)', globals={'line': "
            "sys.argv[1]}, number=20000, repeat=5)) / 20000)",
            line,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    per_start = float(inert.stdout) * 1e6
    in_force = dict(env, TRAIN_RESUME_OUTPUT_DIR="/nowhere/out")
    n = max(runs, loops)
    cmd = [sys.executable, "-c", "pass"]
    (bare_t, _), (hooked_t, _) = interleaved([cmd, cmd], n, [env, in_force])
    print(
        f"train-resume.pth, no decision in force: {per_start:.1f} us a start (the line, as "
        f"site runs it: exec, in-process); python -c pass with the hand-off through it "
        f"(decision in force, no bootstrap on PYTHONPATH): {hooked_t * 1000:.1f} ms against "
        f"{bare_t * 1000:.1f} ms (+{(hooked_t - bare_t) * 1000:.1f} ms; median of {n} each)"
    )


def run_once(cmd, env):
    """(wall s, CPU s of user + system) of one run of CMD."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed (exit {proc.returncode})")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def import_time(cmd, env, module="sitecustomize"):
    """The cumulative import time (ms) of MODULE that `python -X importtime` reports."""
    err = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stderr
    for line in err.splitlines():
        fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1000
    raise SystemExit(f"{cmd}: no import time for {module}")


def jq_version():
    return subprocess.run(["jq", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
