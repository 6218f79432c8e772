"""A small CPU-bound workload for pystrobe's demo: three functions with
designed shares of the time (about 60 / 30 / 10 %), one of them in C (zlib)."""
import time
import zlib

DATA = bytes(range(256)) * 4096


def parse_numbers(n):
    total = 0
    for i in range(n):
        total += int(str(i * 7919)) % 13
    return total


def compress_blocks(n):
    size = 0
    for _ in range(n):
        size += len(zlib.compress(DATA, 6))
    return size


def tiny_helper(n):
    return sum(x * x for x in range(n))


def main(seconds=4.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        parse_numbers(60_000)
        compress_blocks(12)
        tiny_helper(100_000)


if __name__ == "__main__":
    main()
