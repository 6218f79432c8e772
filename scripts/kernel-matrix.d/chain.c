/* The native workload of scripts/kernel-matrix and of the tests (CHAIN_C in
 * tests/common/mod.rs includes this file): main -> a -> b -> leaf, spinning
 * in leaf. Each call is followed by work, so none is a tail call.
 * Built with -O2 -fomit-frame-pointer, so that only .eh_frame unwinding
 * rebuilds the stack. `chain [SECONDS [ITERATIONS]]`: runs for SECONDS (forever if 0). */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline, noclone)) unsigned long leaf(unsigned long n) {
    unsigned long x = 0;
    for (unsigned long i = 0; i < n; i++) {
        x += (i * i) ^ (x >> 3);
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

__attribute__((noinline, noclone)) unsigned long b(unsigned long n) {
    unsigned long r = leaf(n);
    sink += r;
    return r + 1;
}

__attribute__((noinline, noclone)) unsigned long a(unsigned long n) {
    unsigned long r = b(n);
    sink += r;
    return r + 2;
}

int main(int argc, char **argv) {
    double limit = argc > 1 ? atof(argv[1]) : 0;
    unsigned long n = argc > 2 ? strtoul(argv[2], 0, 10) : 1000000;
    double start = now();
    for (;;) {
        sink += a(n);
        if (limit > 0 && now() - start >= limit)
            break;
    }
    return 0;
}
