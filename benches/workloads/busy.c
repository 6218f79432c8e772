#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A fixed amount of CPU-bound work behind a call chain:
 * main -> run_work -> stage_parse -> stage_transform -> descend (x6) -> mix.
 * Usage: workload ITERATIONS RESULT_FILE     fixed work
 *        workload --seconds S RESULT_FILE    work until S seconds have passed
 * First 0.1 s of cheap system calls, as any real program makes early on: the
 * profiler sees kernel stacks (and loads kernel symbols) at the start, not at
 * a random time during the timed work.
 * Writes "wall_seconds cpu_seconds iterations work_cpu_seconds" to
 * RESULT_FILE: wall and work CPU time of the work alone, CPU of the whole
 * process. */

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long mix(unsigned long x)
{
	for (int i = 0; i < 48; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

__attribute__((noinline)) static unsigned long descend(unsigned long x, int depth)
{
	if (depth == 0)
		return mix(x);
	return descend(x * 0x9e3779b97f4a7c15UL + 1, depth - 1) ^ (unsigned long)depth;
}

__attribute__((noinline)) static unsigned long stage_transform(unsigned long x)
{
	return descend(x, 6) + 3;
}

__attribute__((noinline)) static unsigned long stage_parse(unsigned long x)
{
	return stage_transform(x ^ 0x5bd1e995UL) * 7;
}

__attribute__((noinline)) static unsigned long run_work(unsigned long iterations)
{
	unsigned long acc = 1;
	for (unsigned long i = 0; i < iterations; i++)
		acc += stage_parse(acc + i);
	return acc;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	double warm_until = now() + 0.1;
	while (now() < warm_until)
		for (int i = 0; i < 1000; i++)
			syscall(SYS_getppid);

	double t0 = now(), c0 = cpu_now();
	unsigned long done = 0;
	const char *out;
	if (argc == 4 && strcmp(argv[1], "--seconds") == 0) {
		double until = t0 + atof(argv[2]);
		out = argv[3];
		while (now() < until) {
			sink += run_work(20000);
			done += 20000;
		}
	} else if (argc == 3) {
		done = strtoul(argv[1], NULL, 10);
		out = argv[2];
		sink += run_work(done);
	} else {
		fprintf(stderr, "usage: %s ITERATIONS|--seconds S RESULT_FILE\n", argv[0]);
		return 2;
	}
	double wall = now() - t0;
	double cpu = cpu_now();
	FILE *f = fopen(out, "w");
	if (!f)
		return 1;
	fprintf(f, "%.6f %.6f %lu %.6f\n", wall, cpu, done, cpu - c0);
	fclose(f);
	return 0;
}
