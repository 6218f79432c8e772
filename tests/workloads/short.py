"""A short-lived process: about 50 ms of work in short_task, then exit."""
import time


def short_task():
    end = time.monotonic() + 0.05
    while time.monotonic() < end:
        sum(i * i for i in range(200))


short_task()
