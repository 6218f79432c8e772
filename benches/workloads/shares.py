"""Python workloads with designed CPU shares, for benches/compare.

    shares.py calibrate KIND                 seconds of CPU per unit of each function (JSON)
    shares.py run KIND ROUNDS RESULT F=UNITS...
                                             fixed work: UNITS units of each function F,
                                             spread evenly over ROUNDS rounds

KIND is one of
    pure     hot, warm and cold: the same pure-Python loop in three functions
    cext     in_python (a pure-Python loop) and in_zlib (zlib.compress, C code
             called from Python)
    threads  worker_0 .. worker_3, each on its own thread, contending for the GIL

The harness calibrates once, unprofiled, then picks the units so that the
functions get the designed shares of the CPU (e.g. 60/30/10). The truth each
profile is checked against is what the run itself measured: every call of a
designed function is timed with time.thread_time(), so the shares hold even
when a profiler slows some code more than other code.

The result file (JSON) says: the wall and CPU time of the work alone, the CPU
time of the whole process, and the CPU seconds spent in each function. SIGTERM
writes it too, for the whole-host case, where the work is stopped from outside.
Runs on CPython 3.9 and later; standard library only.
"""

import json
import os
import resource
import signal
import sys
import threading
import time
import zlib

# ------------------------------------------------------------------ the work
# A unit is 1000 loop iterations or one zlib.compress of DATA. The bodies are
# identical on purpose: a profiler that mixes up functions cannot hide behind
# different costs.


def hot(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


def warm(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


def cold(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


def in_python(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


DATA = bytes((i * 7919 + (i >> 5)) & 0xFF for i in range(32768))


def in_zlib(units):
    n = 0
    for _ in range(units):
        n += len(zlib.compress(DATA, 6))
    return n


def worker_0(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


def worker_1(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


def worker_2(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


def worker_3(units):
    acc = 0
    for i in range(units * 1000):
        acc = (acc * 31 + i) & 0xFFFFF
    return acc


KINDS = {
    "pure": [hot, warm, cold],
    "cext": [in_python, in_zlib],
    "threads": [worker_0, worker_1, worker_2, worker_3],
}

# ------------------------------------------------------------------ accounting

spent = {}  # function name -> CPU seconds of the thread that called it
lock = threading.Lock()


def timed(fn, units):
    t = time.thread_time()
    fn(units)
    dt = time.thread_time() - t
    with lock:
        spent[fn.__name__] = spent.get(fn.__name__, 0.0) + dt


def process_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def chunks(units, rounds):
    """units split into `rounds` nearly equal parts (zeros dropped)."""
    base, extra = divmod(units, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds) if base or r < extra]


def run_serial(fns, units, rounds):
    plans = {fn.__name__: chunks(units[fn.__name__], rounds) for fn in fns}
    for r in range(rounds):
        for fn in fns:
            plan = plans[fn.__name__]
            if r < len(plan):
                timed(fn, plan[r])


def run_threads(fns, units, rounds):
    def body(fn):
        for part in chunks(units[fn.__name__], rounds):
            timed(fn, part)

    threads = [threading.Thread(target=body, args=(fn,), name=fn.__name__) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def work(kind, units, rounds):
    fns = KINDS[kind]
    if kind == "threads":
        run_threads(fns, units, rounds)
    else:
        run_serial(fns, units, rounds)


def calibrate(kind):
    """CPU seconds per unit of each function, from about 0.2 s of each."""
    out = {}
    for fn in KINDS[kind]:
        units = 1
        while True:
            t = time.thread_time()
            fn(units)
            dt = time.thread_time() - t
            if dt >= 0.2:
                break
            units *= 2
        out[fn.__name__] = dt / units
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "calibrate":
        print(json.dumps(calibrate(sys.argv[2])))
        return
    if len(sys.argv) < 5 or sys.argv[1] != "run" or sys.argv[2] not in KINDS:
        sys.exit(__doc__)
    kind, rounds, result = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    units = {name: int(n) for name, n in (a.split("=", 1) for a in sys.argv[5:])}
    if set(units) != {fn.__name__ for fn in KINDS[kind]}:
        sys.exit("shares.py: give UNITS for each of " + ", ".join(fn.__name__ for fn in KINDS[kind]))

    t0, c0 = time.monotonic(), process_cpu()

    def report(*_):
        # Written to a temporary name and renamed: the harness never reads half a file.
        wall, cpu = time.monotonic() - t0, process_cpu()
        with lock:
            data = {"kind": kind, "wall_s": wall, "work_cpu_s": cpu - c0, "process_cpu_s": cpu,
                    "functions": dict(spent), "pid": os.getpid()}
        with open(result + ".tmp", "w") as f:
            json.dump(data, f)
        os.rename(result + ".tmp", result)
        # Skip the interpreter's teardown: the exit cost left after the
        # self-reported CPU time stays small and is measured unprofiled.
        os._exit(0)

    signal.signal(signal.SIGTERM, report)
    work(kind, units, rounds)
    report()


main()
