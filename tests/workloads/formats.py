"""A known mix for the format tests: the main thread alternates between
hot() and cold(), HOT_MS and COLD_MS of CPU each (default 3 and 1: three
quarters in hot); a worker thread runs worker_fn() meanwhile. Runs for
SECONDS (default 1.5).

usage: formats.py [SECONDS [HOT_MS COLD_MS]]"""
import sys
import threading
import time


def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(i * i for i in range(100))


HOT_S = float(sys.argv[2]) / 1000 if len(sys.argv) > 3 else 0.003
COLD_S = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.001


def hot():
    spin(HOT_S)


def cold():
    spin(COLD_S)


def worker_fn(stop):
    while not stop.is_set():
        spin(0.002)


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5
    stop = threading.Event()
    worker = threading.Thread(target=worker_fn, args=(stop,), name="worker")
    worker.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        hot()
        cold()
    stop.set()
    worker.join()
