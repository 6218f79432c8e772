"""A known mix for the format tests: the main thread spends about three
quarters of its time in hot() and a quarter in cold(); a worker thread runs
worker_fn() meanwhile. Runs for SECONDS (default 1.5)."""
import sys
import threading
import time


def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(i * i for i in range(100))


def hot():
    spin(0.003)


def cold():
    spin(0.001)


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
