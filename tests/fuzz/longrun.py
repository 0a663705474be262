#!/usr/bin/env python3
"""longrun.py — fuzzes every target until each has had CPU_SECONDS of CPU
time (user + system of the fuzzer process, from wait4), one fuzzer at a
time, in rounds of at most ROUND wall seconds, the target with the least CPU
so far first. libFuzzer's -max_total_time counts wall time, and on a shared
machine a wall-time bar says little about how much fuzzing was done.

    python3 tests/fuzz/longrun.py [FUZZ_BUILD [CPU_SECONDS [ROUND [TARGET...]]]]
        defaults: build-fuzz 600 120, every target with a built binary

Each run starts from FUZZ_BUILD/fuzz/corpus/TARGET/ (where it writes what it
finds), tests/fuzz/corpus/TARGET/ and FUZZ_BUILD/seeds/TARGET/ (mkseeds.py),
with the limits of tests/fuzz/run.sh's `opts` (read again every round).
The CPU seconds and executions per target are kept in
FUZZ_BUILD/fuzz/longrun.json (so a later call continues the count);
a target whose run fails (a crash, a leak, a slow unit, out of memory) is
left out of later rounds until its entry's "failed" is cleared (the file
is read again before every round and updated entry by entry, so it may be
edited while this runs): its input is in FUZZ_BUILD/fuzz/crashes/TARGET/,
the log in FUZZ_BUILD/fuzz/log/. SIGTERM stops the fuzzer running and
counts its time before leaving.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

FB = sys.argv[1] if len(sys.argv) > 1 else "build-fuzz"
GOAL = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
ROUND = int(sys.argv[3]) if len(sys.argv) > 3 else 120
ONLY = sys.argv[4:]
HERE = "tests/fuzz"
LEDGER = os.path.join(FB, "fuzz", "longrun.json")


def opts(target):
    with open(os.path.join(HERE, "run.sh")) as f:
        m = re.search(r"^opts\(\) \{\n.*?^\}\n", f.read(), re.S | re.M)
    out = subprocess.run(["sh", "-c", "here=%s\n%s\nopts %s" % (HERE, m.group(0), target)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def load():
    try:
        with open(LEDGER) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(led):
    with open(LEDGER + ".tmp", "w") as f:
        json.dump(led, f, indent=1, sort_keys=True)
    os.replace(LEDGER + ".tmp", LEDGER)


def targets():
    names = ONLY or sorted(n[:-2] for n in os.listdir(HERE) if n.startswith("fuzz_") and n.endswith(".c"))
    return [t for t in names if os.access(os.path.join(FB, "fuzz", t), os.X_OK)]


STOP = []


class Stop(Exception):
    pass


def on_term(signum, frame):
    STOP.append(signum)
    raise Stop()


def one(t, secs, led):
    e = dict(led.get(t) or {"cpu_s": 0.0, "runs": 0, "execs": 0, "failed": ""})
    dirs = [os.path.join(FB, "fuzz", "corpus", t)]
    for d in (os.path.join(HERE, "corpus", t), os.path.join(FB, "seeds", t)):
        if os.path.isdir(d):
            dirs.append(d)
    crashes = os.path.join(FB, "fuzz", "crashes", t)
    for d in (dirs[0], crashes, os.path.join(FB, "fuzz", "log")):
        os.makedirs(d, exist_ok=True)
    log = os.path.join(FB, "fuzz", "log", "%s.long.%d" % (t, e["runs"]))
    cmd = [os.path.join(FB, "fuzz", t)] + opts(t) + [
        "-max_total_time=%d" % secs, "-print_final_stats=1", "-artifact_prefix=%s/" % crashes] + dirs
    with open(log, "w") as lf:
        lf.write(" ".join(cmd) + "\n")
        lf.flush()
        p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except Stop:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.kill(p.pid, signal.SIGINT)  # libFuzzer prints its stats and exits (not p.send_signal:
            _, status, ru = os.wait4(p.pid, 0)  # its poll() may reap the child before wait4)
        p.returncode = os.waitstatus_to_exitcode(status)
        if STOP and p.returncode in (-signal.SIGINT, 72, 130):
            p.returncode = 0
    cpu = ru.ru_utime + ru.ru_stime
    with open(log, errors="replace") as lf:
        text = lf.read()
    ex = re.findall(r"^stat::number_of_executed_units: *(\d+)", text, re.M)
    e["cpu_s"] += cpu
    e["runs"] += 1
    e["execs"] += int(ex[-1]) if ex else 0
    if p.returncode != 0:
        why = re.findall(r"^(?:==\d+== ?ERROR: .*|SUMMARY: .*|.*check failed.*|.*runtime error.*)$", text, re.M)
        e["failed"] = "rc %d, %s: %s" % (p.returncode, log, " | ".join(why[:3]))
    led = load()  # the file may have been edited during the run
    led[t] = e
    save(led)
    print("%s %-20s +%6.1f CPU-s (%3d s wall round) -> %7.1f CPU-s, %d execs%s" % (
        time.strftime("%H:%M:%S"), t, cpu, secs, e["cpu_s"], e["execs"],
        "  FAILED: " + e["failed"] if e["failed"] else ""), flush=True)


def main():
    signal.signal(signal.SIGTERM, on_term)
    while not STOP:
        led = load()
        todo = [t for t in targets()
                if led.get(t, {}).get("cpu_s", 0) < GOAL and not led.get(t, {}).get("failed")]
        if not todo:
            break
        t = min(todo, key=lambda t: led.get(t, {}).get("cpu_s", 0))
        left = GOAL - led.get(t, {}).get("cpu_s", 0)
        # wall seconds: what is left of the CPU goal, a few seconds more, at most ROUND
        one(t, max(10, min(ROUND, int(left) + 5)), led)
    print(json.dumps(load(), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
