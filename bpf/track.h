/* Following processes as they fork, exec and exit, so that the in-kernel
 * filter (target_pids) is right from a new process's first instruction, and
 * userspace hears about the changes it cannot see in samples.
 *
 * The rules (rodata, set from the command line):
 *   follow_forks:   a new process forked by a target is a target (-s; and
 *                   --match/--python, where a forked child inherits the
 *                   name and command line that selected its parent).
 *   keep_on_exec:   a target stays one when it runs another program (-s).
 *   select_on_exec: a process that runs a new program is a target exactly
 *                   when its new name matches comm_pattern (--match,
 *                   --python); userspace then checks command lines and
 *                   interpreters, which the kernel cannot, and corrects.
 * Exits remove the process from the filter, so that a reused PID is not
 * sampled as if it were the old process. */
#ifndef PYSTROBE_TRACK_H
#define PYSTROBE_TRACK_H

#include <bpf/bpf_tracing.h>

const volatile bool follow_forks = false;
const volatile bool keep_on_exec = false;
const volatile bool select_on_exec = false;
/* A substring of the process name (comm) that selects a process at exec;
 * empty: none. comm_prefix: only at the start. */
const volatile char comm_pattern[TASK_COMM_LEN] = {};
const volatile __u32 comm_pattern_len = 0;
const volatile bool comm_prefix = false;
/* Report every exec to userspace, not only targets' (it matches command
 * lines, and looks for interpreters early in whole-host recordings). */
const volatile bool report_execs = false;
/* Report every exit, not only targets' (whole-host: userspace frees the
 * state of every process it sampled). */
const volatile bool report_all_exits = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} events SEC(".maps");

static __always_inline void send_event(__u32 kind, struct task_struct *task, __u32 parent)
{
	struct proc_change *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->kind = kind;
	e->pid = BPF_CORE_READ(task, tgid);
	e->parent = parent;
	e->_pad = 0;
	e->start_ns = BPF_CORE_READ(task, group_leader, start_time);
	e->mm = (__u64)BPF_CORE_READ(task, mm);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	/* Wake userspace for new programs: its filter decisions and
	 * interpreter discovery should not wait for the next drain. */
	bpf_ringbuf_submit(e, kind == PROC_EVENT_EXIT ? BPF_RB_NO_WAKEUP : 0);
}

static __always_inline bool comm_matches(const char *comm)
{
	__u32 n = comm_pattern_len;
	if (n == 0 || n >= TASK_COMM_LEN)
		return false;
	for (__u32 start = 0; start < TASK_COMM_LEN; start++) {
		if (comm_prefix && start > 0)
			return false;
		bool ok = true;
		for (__u32 i = 0; i < TASK_COMM_LEN - 1; i++) {
			if (i >= n)
				break;
			__u32 at = start + i;
			if (at >= TASK_COMM_LEN || comm[at] != comm_pattern[i]) {
				ok = false;
				break;
			}
		}
		if (ok)
			return true;
		if (comm[start] == 0)
			return false;
	}
	return false;
}

static __always_inline bool is_target(__u32 tgid)
{
	return bpf_map_lookup_elem(&target_pids, &tgid) != NULL;
}

static __always_inline void set_target(__u32 tgid)
{
	__u8 one = 1;
	bpf_map_update_elem(&target_pids, &tgid, &one, BPF_ANY);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 tgid = BPF_CORE_READ(child, tgid);
	/* A new thread joins its process, which is already decided. */
	if (!filter_pids || !follow_forks || tgid != BPF_CORE_READ(child, pid))
		return 0;
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	if (!is_target(parent_tgid))
		return 0;
	set_target(tgid);
	send_event(PROC_EVENT_FORK, child, parent_tgid);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	/* Another program: the interpreter published for the old one is gone. */
	bpf_map_delete_elem(&py_procs, &tgid);
	bool target = !filter_pids || is_target(tgid);
	if (filter_pids && select_on_exec && !(keep_on_exec && target)) {
		char comm[TASK_COMM_LEN];
		BPF_CORE_READ_STR_INTO(&comm, task, comm);
		bool now = comm_matches(comm);
		if (now && !target)
			set_target(tgid);
		else if (!now && target)
			bpf_map_delete_elem(&target_pids, &tgid);
		target = now;
	}
	if ((target && filter_pids) || report_execs)
		send_event(PROC_EVENT_EXEC, task, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	__u32 tid = BPF_CORE_READ(task, pid);
	bpf_map_delete_elem(&py_threads, &tid);
	/* Only the last thread's exit ends the process. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&py_procs, &tgid);
	bool target = filter_pids && bpf_map_delete_elem(&target_pids, &tgid) == 0;
	if (target || report_all_exits)
		send_event(PROC_EVENT_EXIT, task, 0);
	return 0;
}

#endif
