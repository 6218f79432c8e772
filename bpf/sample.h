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
/* Python frames kept per sample; deeper stacks are cut and flagged. */
#define MAX_PY_FRAMES 128

/* sample_header.flags */
#define SAMPLE_USER_REGS 1      /* ip/sp/bp hold the thread's user registers */
#define SAMPLE_IN_KERNEL 2      /* the timer fired while the CPU was in the kernel */
#define SAMPLE_KTHREAD 4        /* a kernel thread: no user part at all */
#define SAMPLE_PY_TRUNCATED 8   /* more Python frames than MAX_PY_FRAMES */
#define SAMPLE_PY_NO_THREAD 16  /* a Python process, but this thread has no thread state */
#define SAMPLE_PY_READ_ERROR 32 /* the frame chain could not be read to its end */

/* py_frame.flags */
#define PY_FRAME_ENTRY 1        /* first frame run by its eval-loop call (3.11+) */

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
	/* The process's start time (its leader's, CLOCK_MONOTONIC ns): with
	 * tgid, the identity of a process, which a reused PID does not share. */
	__u64 start_ns;
	__s32 kstack_bytes;     /* bytes of kstack[] filled, or a negative errno */
	__u32 ustack_bytes;     /* bytes of the user stack copy that follow */
	__u32 py_frames;        /* Python frames that follow the header */
	__u32 _pad;
	char comm[16];
	__u64 kstack[MAX_KSTACK_DEPTH];
};

/* One Python frame, innermost first. Names and lines are resolved by
 * userspace from the code object. */
struct py_frame {
	__u64 code;             /* PyCodeObject address */
	__u64 instr;            /* instruction pointer (3.11+) or f_lasti (3.9, 3.10) */
	/* 3.12+: address of the shim frame under this entry frame. The shim is a
	 * local variable of the eval-loop call that runs this frame, so it lies
	 * in that call's native stack frame: this is how userspace finds the
	 * eval-loop frame when its symbol is unknown (stripped tail-calling
	 * builds). 0 when there is none. */
	__u64 shim;
	__u32 first_line;       /* code->co_firstlineno: tells a reused address apart */
	__u32 flags;            /* PY_FRAME_* */
};

/* Where things are in one interpreter, published by userspace per process
 * (src/python/layout.rs fills it from the version's layout). Offsets are in
 * bytes; 0xffff means "absent in this version". */
#define PY_NONE 0xffff
struct py_proc {
	__u64 runtime;                  /* address of _PyRuntime */
	__u64 mm;                       /* the address space it was found in; 0: any */
	__u64 code_mask;                /* clears tag bits of f_executable (3.14+) */
	__u16 runtime_interpreters_head;
	__u16 interp_next;
	__u16 interp_threads_head;
	__u16 tstate_next;
	__u16 tstate_thread_id;
	__u16 tstate_frame;             /* the current frame, or the cframe holding it */
	__u16 cframe_current_frame;     /* PY_NONE when tstate_frame is the frame itself */
	__u16 frame_previous;
	__u16 frame_code;
	__u16 frame_instr;
	__u16 frame_is_entry;           /* 3.11's is_entry, else PY_NONE */
	__u16 frame_owner;              /* 3.12+'s owner, else PY_NONE */
	__u16 code_firstlineno;
	__u8 instr_is_pointer;          /* instr is a pointer (3.11+), not an int */
	__u8 owner_cstack;              /* owners >= this are not Python frames */
	__u32 _pad;
};

/* The thread-state address found for a thread, or none found at `time_ns`. */
struct py_thread {
	__u64 tstate;
	__u64 time_ns;
};

/* The per-CPU scratch slot a record is built in before it is copied to the
 * ring buffer. The extra page lets a page-wise read start at any offset below
 * MAX_USTACK_BYTES without the verifier seeing an overflow. Only the header
 * and the filled part of data[] are sent. */
struct sample_record {
	struct sample_header hdr;
	/* py_frame[py_frames], then the user stack copy. */
	__u8 data[MAX_PY_FRAMES * sizeof(struct py_frame) + MAX_USTACK_BYTES + PAGE_BYTES];
};

/* A change in the set of processes, for userspace (bpf/track.h). */
#define PROC_EVENT_FORK 1       /* a target forked a new process, now a target */
#define PROC_EVENT_EXEC 2       /* a process ran a new program */
#define PROC_EVENT_EXIT 3       /* a process's last thread exited */

struct proc_change {
	__u32 kind;             /* PROC_EVENT_* */
	__u32 pid;              /* tgid, as the host sees it */
	__u32 parent;           /* FORK: the parent's tgid */
	__u32 _pad;
	__u64 start_ns;         /* as sample_header.start_ns */
	__u64 mm;               /* as sample_header.mm (FORK: the child's) */
	char comm[16];
};

/* Counters, one slot per CPU, summed by userspace. */
struct sampler_stats {
	__u64 samples;          /* records written to the ring buffer */
	__u64 lost;             /* records that did not fit in the ring buffer */
	__u64 filtered;         /* samples of processes not selected */
	__u64 ustack_faults;    /* user stack copies cut short by a failed read */
	__u64 py_samples;       /* samples of Python processes */
	__u64 py_no_thread;     /* ... on a thread with no Python thread state */
	__u64 py_thread_walks;  /* thread-state searches (cache misses) */
};

#endif
