# The Python workload of scripts/kernel-matrix: km_outer -> km_middle ->
# km_hot, spinning in km_hot for the number of seconds given (default 4).
import sys
import time


def km_hot(until):
    n = 0
    while time.monotonic() < until:
        n += 1
    return n


def km_middle(until):
    return km_hot(until)


def km_outer(until):
    return km_middle(until)


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    print("ready", flush=True)
    km_outer(time.monotonic() + seconds)
