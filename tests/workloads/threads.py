"""Three named threads, each busy in its own function, while the main thread
waits; runs until killed. Prints the native thread IDs as JSON when ready."""
import json
import sys
import threading


def spin():
    sum(i * i for i in range(1000))


def alpha_fn():
    while True:
        spin()


def beta_fn():
    while True:
        spin()


def gamma_fn():
    while True:
        spin()


if __name__ == "__main__":
    threads = [threading.Thread(target=f, name=n, daemon=True)
               for f, n in [(alpha_fn, "worker-alpha"), (beta_fn, "worker-beta"),
                            (gamma_fn, "worker-gamma")]]
    for t in threads:
        t.start()
    print(json.dumps({t.name: t.native_id for t in threads}), flush=True)
    threading.Event().wait()
