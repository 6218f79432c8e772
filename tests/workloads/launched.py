"""Launched by pystrobe: reports who it runs as, then runs a child process
(which -s must follow) and works in its own function meanwhile.

usage: launched.py REPORT"""
import json
import os
import subprocess
import sys
import time


def parent_work(seconds):
    end = time.time() + seconds
    while time.time() < end:
        sum(i * i for i in range(1000))


def child_work(seconds):
    end = time.time() + seconds
    while time.time() < end:
        sum(i * i for i in range(1000))


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child_work(0.6)
        sys.exit(0)
    child = subprocess.Popen([sys.executable, __file__, "--child"])
    with open(sys.argv[1], "w") as f:
        json.dump({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                   "home": os.environ.get("HOME"), "user": os.environ.get("USER"),
                   "child": child.pid}, f)
    parent_work(0.6)
    child.wait()
