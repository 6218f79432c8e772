/* Walking CPython's frame chain at the instant of a sample.
 *
 * One code path for every version: what differs (field offsets, how the
 * current frame is reached, how an entry frame is marked) arrives as data in
 * struct py_proc. Everything read here is another process's memory: every
 * read may fail and every loop is bounded. */
#ifndef PYSTROBE_PYTHON_H
#define PYSTROBE_PYTHON_H

/* Interpreters and threads searched for the sampled thread's state. */
#define MAX_PY_INTERPRETERS 4
#define MAX_PY_THREADS 128
/* Without bpf_loop (before 5.17) the walks are plain bounded loops, which
 * the verifier follows iteration by iteration: smaller limits keep them
 * within its budget. */
#define LEGACY_PY_STEPS 33
#define LEGACY_PY_FRAMES 48
/* How long "this thread has no Python state" is believed (a thread may
 * create its state after starting). */
#define PY_NO_THREAD_TTL_NS (20 * 1000 * 1000)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);             /* tgid */
	__type(value, struct py_proc);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);             /* tid */
	__type(value, struct py_thread);
} py_threads SEC(".maps");

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* State of the thread-state search, one bpf_loop step per thread state.
 * The offsets are copied in so the callback needs no map pointers. */
struct thread_walk {
	__u16 interp_next, interp_threads_head, tstate_next, tstate_thread_id;
	__u64 fsbase;
	__u64 interp;
	__u64 ts;
	__u64 found;
};

static long thread_step(__u64 i, struct thread_walk *w)
{
	if (!w->ts) {
		/* This interpreter's threads are done: on to the next one. (No
		 * counter of interpreters: bpf_loop's count bounds the walk, and a
		 * counter the verifier can follow makes it verify every value.) */
		w->interp = read_ptr(w->interp + w->interp_next);
		if (!w->interp)
			return 1;
		w->ts = read_ptr(w->interp + w->interp_threads_head);
		return 0;
	}
	if (read_ptr(w->ts + w->tstate_thread_id) == w->fsbase) {
		w->found = w->ts;
		return 1;
	}
	w->ts = read_ptr(w->ts + w->tstate_next);
	return 0;
}

/* Searches every thread state of every interpreter for the one whose
 * thread_id (pthread_self(), which is the fs base on x86_64 with glibc and
 * musl) is this thread's: this works inside PID namespaces, where Python's
 * native_thread_id is not the host tid. */
static __always_inline __u64 find_tstate(struct py_proc *py, __u64 fsbase, const bool legacy)
{
	struct thread_walk w = {
		.interp_next = py->interp_next,
		.interp_threads_head = py->interp_threads_head,
		.tstate_next = py->tstate_next,
		.tstate_thread_id = py->tstate_thread_id,
		.fsbase = fsbase,
	};
	w.interp = read_ptr(py->runtime + py->runtime_interpreters_head);
	if (!w.interp)
		return 0;
	w.ts = read_ptr(w.interp + w.interp_threads_head);
	if (legacy) {
		for (int i = 0; i < LEGACY_PY_STEPS; i++)
			if (thread_step(i, &w))
				break;
	} else {
		bpf_loop(MAX_PY_INTERPRETERS * (MAX_PY_THREADS + 1), thread_step, &w, 0);
	}
	return w.found;
}

/* The thread state of the current thread, from the cache when it still
 * holds (its thread_id is still ours), else by search. */
static __always_inline __u64 current_tstate(struct py_proc *py, __u32 tid, __u64 fsbase,
					    __u64 now, struct sampler_stats *st, const bool legacy)
{
	struct py_thread *cached = bpf_map_lookup_elem(&py_threads, &tid);
	if (cached) {
		if (cached->tstate && read_ptr(cached->tstate + py->tstate_thread_id) == fsbase)
			return cached->tstate;
		if (!cached->tstate && now - cached->time_ns < PY_NO_THREAD_TTL_NS)
			return 0;
	}
	if (st)
		st->py_thread_walks++;
	struct py_thread found = { .tstate = find_tstate(py, fsbase, legacy), .time_ns = now };
	bpf_map_update_elem(&py_threads, &tid, &found, BPF_ANY);
	return found.tstate;
}

/* State of the frame walk, one bpf_loop step per frame. */
struct frame_walk {
	struct py_proc py;
	__u64 frame;
	__u32 cpu;
	__u32 n;
	__u32 flags;
};

static long frame_step(__u64 i, struct frame_walk *w)
{
	if (!w->frame)
		return 1;
	struct sample_record *rec = bpf_map_lookup_elem(&scratch, &w->cpu);
	if (!rec)
		return 1;
	if (w->py.frame_owner != PY_NONE) {
		__u8 owner = 0;
		if (bpf_probe_read_user(&owner, 1, (void *)(w->frame + w->py.frame_owner))) {
			w->flags |= SAMPLE_PY_READ_ERROR;
			return 1;
		}
		if (owner >= w->py.owner_cstack) {
			/* A shim frame pushed when C code entered the eval loop:
			 * the Python frame above it is an entry frame. */
			if (w->n > 0 && w->n <= MAX_PY_FRAMES) {
				struct py_frame *above =
					(void *)&rec->data[((w->n - 1) * sizeof(struct py_frame)) & 4095];
				above->flags |= PY_FRAME_ENTRY;
				if (!above->shim)
					above->shim = w->frame;
			}
			w->frame = read_ptr(w->frame + w->py.frame_previous);
			return 0;
		}
	}
	if (w->n >= MAX_PY_FRAMES) {
		w->flags |= SAMPLE_PY_TRUNCATED;
		return 1;
	}
	struct py_frame *pf = (void *)&rec->data[(w->n * sizeof(struct py_frame)) & 4095];
	pf->code = read_ptr(w->frame + w->py.frame_code) & w->py.code_mask;
	pf->flags = 0;
	pf->first_line = 0;
	pf->shim = 0;
	if (w->py.instr_is_pointer) {
		pf->instr = read_ptr(w->frame + w->py.frame_instr);
	} else {
		__s32 lasti = 0;
		bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(w->frame + w->py.frame_instr));
		pf->instr = (__u64)(__s64)lasti;
	}
	if (w->py.frame_is_entry != PY_NONE) {
		__u8 entry = 0;
		bpf_probe_read_user(&entry, 1, (void *)(w->frame + w->py.frame_is_entry));
		if (entry)
			pf->flags |= PY_FRAME_ENTRY;
	}
	if (pf->code)
		bpf_probe_read_user(&pf->first_line, sizeof(pf->first_line),
				    (void *)(pf->code + w->py.code_firstlineno));
	w->n++;
	w->frame = read_ptr(w->frame + w->py.frame_previous);
	return 0;
}

/* Records the Python frames of the current thread, innermost first, into
 * data[]. Returns the number of frames; sets SAMPLE_PY_* flags. */
static __always_inline __u32 walk_python(struct py_proc *py, struct sample_record *rec,
					 struct task_struct *task, struct sampler_stats *st,
					 const bool legacy)
{
	struct sample_header *h = &rec->hdr;
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	__u64 ts = current_tstate(py, h->tid, fsbase, h->time_ns, st, legacy);
	if (!ts) {
		h->flags |= SAMPLE_PY_NO_THREAD;
		if (st)
			st->py_no_thread++;
		return 0;
	}
	struct frame_walk w = { .py = *py, .cpu = h->cpu };
	w.frame = read_ptr(ts + py->tstate_frame);
	if (py->cframe_current_frame != PY_NONE && w.frame)
		w.frame = read_ptr(w.frame + py->cframe_current_frame);
	/* A few steps more than frames, for the shim frames skipped. */
	if (legacy) {
		for (int i = 0; i < LEGACY_PY_FRAMES; i++)
			if (frame_step(i, &w))
				break;
	} else {
		bpf_loop(MAX_PY_FRAMES + 16, frame_step, &w, 0);
	}
	if (w.frame && !(w.flags & SAMPLE_PY_READ_ERROR))
		w.flags |= SAMPLE_PY_TRUNCATED;
	h->flags |= w.flags;
	return w.n;
}

#endif
