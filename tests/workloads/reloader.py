"""An autoreloader in miniature, as Django's runserver does it: the parent
serves nothing itself; it runs a child that serves, and kills and restarts
the child whenever the trigger file changes.

usage: reloader.py TRIGGER RELOADS PIDFILE
After RELOADS restarts the last child serves for LAST_CHILD_S seconds, then
everything exits. Every child appends its PID to PIDFILE when it starts."""
import os
import subprocess
import sys
import time


def serve_request():
    total = 0
    for i in range(20000):
        total += i * i
    return total


def serve(pidfile):
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        serve_request()


def spawn(pidfile):
    return subprocess.Popen([sys.executable, __file__, "--child", pidfile])


def main(trigger, reloads, pidfile):
    child = spawn(pidfile)
    seen = os.stat(trigger).st_mtime_ns
    done = 0
    while done < reloads:
        time.sleep(0.01)
        mtime = os.stat(trigger).st_mtime_ns
        if mtime != seen:
            seen = mtime
            child.kill()
            child.wait()
            child = spawn(pidfile)
            done += 1
    time.sleep(float(os.environ.get("LAST_CHILD_S", "0.5")))
    child.kill()
    child.wait()


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        serve(sys.argv[2])
    else:
        main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
