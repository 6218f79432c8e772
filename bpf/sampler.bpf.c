// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The sampling program: attached to a CPU-clock perf event on every CPU, it
 * captures, at the instant of the sample, everything userspace needs to
 * rebuild the stack later: identity, kernel stack, user registers and a copy
 * of the top of the user stack. It interprets nothing: unwinding and names
 * are userspace's job. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "sample.h"

#define PF_KTHREAD 0x00200000

/* Set by userspace before load; the verifier sees them as constants. */
const volatile __u32 stack_bytes = 16384;  /* user stack to copy, <= MAX_USTACK_BYTES */
const volatile __u32 self_tgid = 0;        /* pystrobe itself: never sampled */
const volatile bool filter_pids = false;   /* sample only the tgids in target_pids */
const volatile bool include_idle = false;  /* keep samples of the idle task (pid 0) */
/* --native: Python samples need their native and kernel stacks too. Without
 * it, a sample with Python frames is shown as those frames alone, so its
 * stacks are not captured: the copy is most of the program's cost and it
 * evicts the target's cache lines. */
const volatile bool python_native = false;
/* Unused by the program: present so that the skeleton generator emits the
 * Rust type of a Python frame record. */
const volatile struct py_frame py_frame_layout = {};
const volatile struct py_proc py_proc_layout = {};
const volatile struct proc_change proc_change_layout = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* resized by userspace from rate and CPUs */
} samples SEC(".maps");

/* The processes to sample when filter_pids is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} target_pids SEC(".maps");

/* One scratch record per CPU. A plain array indexed by CPU, not a per-CPU
 * array: per-CPU values are limited to 32 KiB. The program runs with
 * preemption off, so a CPU's slot has one user at a time. max_entries is set
 * to the number of possible CPUs by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample_record);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sampler_stats);
} stats SEC(".maps");

#include "python.h"
#include "track.h"

/* Copies up to stack_bytes of user stack from sp to data[base...], one page at a time:
 * bpf_probe_read_user fails as a whole when a range crosses an unmapped page,
 * and the top of a stack is usually less than stack_bytes above sp. */
static __always_inline __u32 copy_user_stack(struct sample_record *rec, __u64 base, __u64 sp,
					      struct sampler_stats *st)
{
	/* 64-bit arithmetic throughout: 32-bit values get zero-extended into
	 * fresh registers and the verifier loses their bounds. */
	__u64 off = 0;
	__u64 limit = stack_bytes;

	for (int i = 0; i < MAX_USTACK_BYTES / PAGE_BYTES + 1; i++) {
		if (off >= limit)
			break;
		__u64 addr = sp + off;
		__u64 chunk = PAGE_BYTES - (addr & (PAGE_BYTES - 1));
		__u64 left = limit - off;
		if (chunk > left)
			chunk = left;
		if (chunk == 0 || chunk > PAGE_BYTES)
			break;
		if (bpf_probe_read_user(&rec->data[base + (off & (MAX_USTACK_BYTES - 1))], chunk,
					(void *)addr)) {
			if (st)
				st->ustack_faults++;
			break;
		}
		off += chunk;
	}
	return off;
}

/* x86_64's kernel stack size without KASAN (Debian's kernels): the saved
 * user registers sit at its top. Used only where bpf_task_pt_regs is missing. */
#define THREAD_SIZE (4096 << 2)

/* The thread's user registers where the timer hit kernel mode: the ones
 * saved on entry to the kernel. */
static __always_inline void user_regs_of(struct task_struct *task, struct sample_header *h,
					 const bool legacy)
{
	if (legacy) {
		/* Before 5.15 (no bpf_task_pt_regs): task_pt_regs() is the last
		 * struct pt_regs at the top of the task's kernel stack. */
		void *stack = BPF_CORE_READ(task, stack);
		struct pt_regs *uregs = (struct pt_regs *)(stack + THREAD_SIZE) - 1;
		bpf_probe_read_kernel(&h->ip, sizeof(h->ip), &uregs->ip);
		bpf_probe_read_kernel(&h->sp, sizeof(h->sp), &uregs->sp);
		bpf_probe_read_kernel(&h->bp, sizeof(h->bp), &uregs->bp);
	} else {
		struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
		h->ip = uregs->ip;
		h->sp = uregs->sp;
		h->bp = uregs->bp;
	}
}

/* The whole sample. `legacy` is a compile-time constant: the two programs
 * below are this one routine specialized for kernels with and without
 * bpf_get_current_task_btf (5.11), bpf_task_pt_regs (5.15) and bpf_loop
 * (5.17); userspace loads the one the running kernel supports. */
static __always_inline int sample(struct bpf_perf_event_data *ctx, const bool legacy)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u32 zero = 0;

	struct sampler_stats *st = bpf_map_lookup_elem(&stats, &zero);

	if (tgid == self_tgid && tgid != 0)
		return 0;
	if (tgid == 0 && !include_idle)
		return 0;
	if (filter_pids && !bpf_map_lookup_elem(&target_pids, &tgid)) {
		if (st)
			st->filtered++;
		return 0;
	}

	__u32 cpu = bpf_get_smp_processor_id();
	struct sample_record *rec = bpf_map_lookup_elem(&scratch, &cpu);
	if (!rec)
		return 0;

	struct sample_header *h = &rec->hdr;
	h->time_ns = bpf_ktime_get_ns();
	h->tgid = tgid;
	h->tid = tid;
	h->cpu = cpu;
	h->flags = 0;
	h->ip = h->sp = h->bp = 0;
	h->ustack_bytes = 0;
	h->py_frames = 0;
	h->kstack_bytes = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));

	struct task_struct *task = legacy ? (struct task_struct *)bpf_get_current_task()
					  : bpf_get_current_task_btf();
	h->mm = (__u64)BPF_CORE_READ(task, mm);
	h->start_ns = BPF_CORE_READ(task, group_leader, start_time);
	if (BPF_CORE_READ(task, flags) & PF_KTHREAD || !h->mm) {
		h->flags |= SAMPLE_KTHREAD;
	} else if ((__s64)ctx->regs.ip < 0) {
		/* Kernel-half address: the timer hit kernel mode. (The context
		 * only permits 8-byte loads, so regs.cs cannot tell us.) */
		h->flags |= SAMPLE_IN_KERNEL | SAMPLE_USER_REGS;
		user_regs_of(task, h, legacy);
	} else {
		h->flags |= SAMPLE_USER_REGS;
		h->ip = ctx->regs.ip;
		h->sp = ctx->regs.sp;
		h->bp = ctx->regs.bp;
	}

	__u64 py_bytes = 0;
	if (h->flags & SAMPLE_USER_REGS) {
		struct py_proc *py = bpf_map_lookup_elem(&py_procs, &tgid);
		/* mm 0: published for a process that ran before the recording,
		 * whose address space userspace could not name (see track.h's
		 * exec, which removes it). */
		if (py && (py->mm == h->mm || py->mm == 0)) {
			if (st)
				st->py_samples++;
			h->py_frames = walk_python(py, rec, task, st, legacy);
			py_bytes = (__u64)h->py_frames * sizeof(struct py_frame);
			if (py_bytes > MAX_PY_FRAMES * sizeof(struct py_frame))
				py_bytes = MAX_PY_FRAMES * sizeof(struct py_frame);
		}
	}
	/* A sample shown as its Python frames alone needs no other stack. */
	if (!h->py_frames || python_native) {
		if (h->flags & SAMPLE_USER_REGS)
			h->ustack_bytes = copy_user_stack(rec, py_bytes, h->sp, st);
		h->kstack_bytes = bpf_get_stack(ctx, h->kstack, sizeof(h->kstack), 0);
	}

	__u64 size = sizeof(struct sample_header) + py_bytes + h->ustack_bytes;
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	if (bpf_ringbuf_output(&samples, rec, size, BPF_RB_NO_WAKEUP)) {
		if (st)
			st->lost++;
		return 0;
	}
	if (st)
		st->samples++;
	return 0;
}

/* Linux 5.17 and later. */
SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	return sample(ctx, false);
}

/* Linux 5.10 to 5.16: no task BTF pointer, no bpf_task_pt_regs, no bpf_loop. */
SEC("perf_event")
int on_sample_legacy(struct bpf_perf_event_data *ctx)
{
	return sample(ctx, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
