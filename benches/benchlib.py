"""Shared pieces of pystrobe's benchmark scripts (benches/overhead,
benches/compare, benches/python-walk): running a profiler under a poller that
snapshots its CPU time, memory and BPF run time; reading pystrobe's summary
line and folded files; statistics and plain-text tables; machine facts; the
py-spy virtualenv. Standard library only."""

import os
import platform
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLL_S = 0.025
PYSPY_VENV = "/var/cache/pystrobe-bench/venv"
PYSPY_VERSION = "0.4.3"

SUMMARY_RE = re.compile(
    r"(?P<samples>\d+) samples \((?P<lost>\d+) lost\) from (?P<procs>\d+) process(?:es)?"
    r" over (?P<secs>[\d.]+) s"
    r"(?:; Python frames in (?P<python>[\d.]+) %)?"
    r"(?:; native stacks complete: (?P<complete>[\d.]+) %(?: of \d+)?)?"
    r"(?:; BPF (?P<bpf_us>[\d.]+) µs/sample)?"
)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fail(msg):
    log(f"{os.path.basename(sys.argv[0])}: error: " + msg)
    sys.exit(1)


# ---------------------------------------------------------------- processes


def rusage_cpu(ru):
    return ru.ru_utime + ru.ru_stime


def task_cpu_ns(pid, seen=None):
    """CPU time of the threads of pid, in ns (/proc/PID/task/*/schedstat:
    exact for a sleeping thread, at most a scheduler tick behind for a running
    one). With `seen` (a dict kept between calls), threads that have exited
    since an earlier call still count, with their last reading: a profiler
    that starts and ends worker threads (py-spy --native) is not undercounted.
    None once the process is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    now = {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                now[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    if seen is None:
        return sum(now.values())
    seen.update(now)
    return sum(seen.values())


def process_cpu_ns(pid):
    """CPU time of a whole process, exited threads included, in ns
    (/proc/PID/stat utime+stime: clock-tick resolution). None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Poller:
    """Snapshots, while a profiler runs: its own CPU time, the CPU time of the
    command it launched, and its BPF program's run_time_ns/run_cnt (from
    /proc/<pid>/fdinfo/<prog fd>)."""

    def __init__(self, pid):
        self.pid = pid
        self.t0 = time.monotonic()
        self.fd = None
        self.prog_id = None
        self.child = None
        self.snaps = []  # (seconds since start, profiler ns, child ns or None, bpf ns, bpf runs)
        self.rss = []  # (seconds since start, profiler's resident set in KiB)
        self.peak_rss_kib = 0  # the profiler's own VmHWM (not its children's)
        self.last_bpf = None  # (run_time_ns, run_cnt)
        self.threads = {}  # tid -> last CPU reading, for task_cpu_ns

    def _bpf(self):
        try:
            if self.fd is None:
                for fd in os.listdir(f"/proc/{self.pid}/fd"):
                    try:
                        if os.readlink(f"/proc/{self.pid}/fd/{fd}") == "anon_inode:bpf-prog":
                            self.fd = fd
                            break
                    except OSError:
                        pass
                if self.fd is None:
                    return
            with open(f"/proc/{self.pid}/fdinfo/{self.fd}") as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
            prog_id = info.get("prog_id", "").strip()
            if self.prog_id is None:
                self.prog_id = prog_id
            elif prog_id != self.prog_id:
                return  # the descriptor number was reused at exit
            if "run_time_ns" in info:
                self.last_bpf = (int(info["run_time_ns"]), int(info["run_cnt"]))
        except OSError:
            pass

    def _memory(self, t):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            rss = int(fields["VmRSS"].split()[0])
            self.peak_rss_kib = max(self.peak_rss_kib, int(fields["VmHWM"].split()[0]), rss)
            self.rss.append((t, rss))
        except (OSError, KeyError, ValueError, IndexError):
            pass

    def poll(self):
        t = time.monotonic() - self.t0
        self._bpf()
        if self.child is None:
            try:
                with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                    kids = f.read().split()
                if kids:
                    self.child = int(kids[0])
            except (OSError, ValueError):
                pass
        self._memory(t)
        own = task_cpu_ns(self.pid, self.threads)
        # The launched command's threads may exit before it does: count the
        # whole process, not its live threads.
        child = process_cpu_ns(self.child) if self.child else None
        if own is not None:
            bpf = self.last_bpf or (0, 0)
            self.snaps.append((t, own, child, bpf[0], bpf[1]))

    def window(self, warmup_s, need_child):
        """First and last snapshots of the steady part of the run: from
        warmup_s after the start until the last snapshot (with the launched
        command still there, when need_child)."""
        snaps = [s for s in self.snaps if not need_child or s[2] is not None]
        if not snaps:
            return None
        start = next((s for s in snaps if s[0] >= warmup_s), None)
        end = snaps[-1]
        if start is None or end[0] - start[0] < 0.5:
            return None
        return start, end


def run(argv, env, log_path, poll=False):
    """Runs argv to completion; returns (exit code, rusage, Poller or None)."""
    with open(log_path, "ab") as out:
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    poller = Poller(p.pid) if poll else None
    while True:
        if poller is None:
            pid, status, ru = os.wait4(p.pid, 0)
        else:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        poller.poll()
        time.sleep(POLL_S)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru, poller


def parse_summary(log_path):
    with open(log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    matches = list(SUMMARY_RE.finditer(text))
    if not matches:
        fail(f"no pystrobe summary line in {log_path}:\n{text[-2000:]}")
    m = matches[-1]
    return {
        "samples": int(m["samples"]),
        "lost": int(m["lost"]),
        "processes": int(m["procs"]),
        "seconds": float(m["secs"]),
        "complete_pct": float(m["complete"]) if m["complete"] else None,
        "bpf_us_per_run": float(m["bpf_us"]) if m["bpf_us"] else None,
    }


def folded_total(path):
    """Sum of the counts of a folded-stacks file (samples written)."""
    total = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                head, _, count = line.rstrip("\n").rpartition(" ")
                if head and count.isdigit():
                    total += int(count)
    except OSError:
        return None
    return total


# ---------------------------------------------------------------- statistics


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def mmm(xs, fmt="{:.2f}"):
    """'median [min–max]'"""
    if not xs:
        return "n/a"
    return f"{fmt.format(med(xs))} [{fmt.format(min(xs))}–{fmt.format(max(xs))}]"


def table(headers, rows):
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    lines = []
    for k, r in enumerate([headers] + rows):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- machine


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu_model": model,
    }


def pystrobe_info(binary):
    info = {"path": binary}
    try:
        info["version"] = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        info["version"] = "?"
    info["built"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(binary)))
    try:
        info["git"] = subprocess.run(
            ["git", "-C", os.path.dirname(binary), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() or "?"
    except OSError:
        info["git"] = "?"
    return info


# ---------------------------------------------------------------- benchmark


# ---------------------------------------------------------------- host load


def host_busy_ticks():
    """Busy and total jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    total = sum(vals[:8])  # guest time is already in user
    return total - idle, total


def own_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def install_pyspy(python=sys.executable):
    """py-spy from PyPI in a private virtualenv (kept between runs)."""
    exe = os.path.join(PYSPY_VENV, "bin", "py-spy")
    if os.path.exists(exe):
        return exe
    log(f"installing py-spy {PYSPY_VERSION} from PyPI into {PYSPY_VENV}")
    os.makedirs(os.path.dirname(PYSPY_VENV), exist_ok=True)
    r = subprocess.run([python, "-m", "venv", PYSPY_VENV], capture_output=True, text=True)
    if r.returncode != 0:
        fail("creating the py-spy venv failed (Debian needs python3-venv):\n" + r.stderr)
    r = subprocess.run([os.path.join(PYSPY_VENV, "bin", "pip"), "install", "-q", f"py-spy=={PYSPY_VERSION}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("pip install py-spy failed:\n" + r.stderr)
    return exe
