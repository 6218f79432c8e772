"""Works in the function named by its first argument until killed, so a test
can tell processes apart by their Python frames. Further arguments are
ignored: they are there for --match to find."""
import sys


def work():
    sum(i * i for i in range(1000))


def alpha_fn():
    while True:
        work()


def beta_fn():
    while True:
        work()


def gamma_fn():
    while True:
        work()


def delta_fn():
    while True:
        work()


if __name__ == "__main__":
    globals()[sys.argv[1]]()
