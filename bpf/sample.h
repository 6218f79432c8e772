/* Layout of one sample record, shared by the BPF program and userspace.
 *
 * userspace reads it through the types the skeleton generator emits from BTF
 * (src/sampler/record.rs), so the two sides cannot drift apart: a change here
 * changes the Rust type at the next build. */
#ifndef PYSTROBE_SAMPLE_H
#define PYSTROBE_SAMPLE_H

/* Kernel frames kept per sample; bpf_get_stack's own limit is 127 by default
 * (kernel.perf_event_max_stack). */
#define MAX_KSTACK_DEPTH 127
/* Largest user-stack copy (--stack-size). A power of two, so an offset can be
 * bounded for the verifier with a mask. */
#define MAX_USTACK_BYTES 65536
#define PAGE_BYTES 4096

/* sample_header.flags */
#define SAMPLE_USER_REGS 1      /* ip/sp/bp hold the thread's user registers */
#define SAMPLE_IN_KERNEL 2      /* the timer fired while the CPU was in the kernel */
#define SAMPLE_KTHREAD 4        /* a kernel thread: no user part at all */

struct sample_header {
	__u64 time_ns;          /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 tgid;             /* process id, as the host sees it */
	__u32 tid;              /* thread id, as the host sees it */
	__u32 cpu;
	__u32 flags;            /* SAMPLE_* */
	__u64 ip;               /* user registers at the sample, or where the */
	__u64 sp;               /* thread entered the kernel */
	__u64 bp;
	/* Address of the task's mm_struct: a new one per exec, so userspace can
	 * tell that a PID now runs another program (and its maps are stale). */
	__u64 mm;
	__s32 kstack_bytes;     /* bytes of kstack[] filled, or a negative errno */
	__u32 ustack_bytes;     /* bytes of the user stack copy that follow */
	char comm[16];
	__u64 kstack[MAX_KSTACK_DEPTH];
};

/* The per-CPU scratch slot a record is built in before it is copied to the
 * ring buffer. The extra page lets a page-wise read start at any offset below
 * MAX_USTACK_BYTES without the verifier seeing an overflow. Only
 * sizeof(header) + ustack_bytes are sent. */
struct sample_record {
	struct sample_header hdr;
	__u8 ustack[MAX_USTACK_BYTES + PAGE_BYTES];
};

/* Counters, one slot per CPU, summed by userspace. */
struct sampler_stats {
	__u64 samples;          /* records written to the ring buffer */
	__u64 lost;             /* records that did not fit in the ring buffer */
	__u64 filtered;         /* samples of processes not selected */
	__u64 ustack_faults;    /* user stack copies cut short by a failed read */
};

#endif
