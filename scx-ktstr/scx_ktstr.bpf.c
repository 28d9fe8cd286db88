/* scx_ktstr.bpf.c - the BPF half of scx-ktstr, the ktstr-wasm fixture scheduler.
 *
 * A shared-queue scheduler with weighted virtual time: every task goes to one user DSQ
 * ordered by vtime and each CPU takes the lowest-vtime task from it when its local queue
 * runs dry (an idle CPU found at wake-up takes the task directly). A task's vtime grows by
 * the CPU time it used (se.sum_exec_runtime, ktstr_running .. ktstr_stopping) * 100 / its weight, where the
 * weight is its cgroup's cpu.weight (kept per cgroup in cgroup storage by ktstr_cgroup_init
 * and ktstr_cgroup_set_weight) times its own p->scx.weight / 100 (nice). The hierarchy is
 * flat: only the cgroup the task is in counts (the cpu controller's cgroup of the task, as
 * scx_bpf_task_cgroup() reports it), not its ancestors. A queued task's vtime is lifted to
 * at least the global vtime minus one slice, so a sleeper cannot bank credit, and at most
 * two slices past it, so a task that ran long in one go is not kept off the CPU for seconds
 * paying it back (EEVDF bounds lag both ways too). The global
 * vtime is the highest vtime of a task that started running after being taken from the
 * shared DSQ (so about the queue's lowest); a task resuming its slice (after a preemption
 * by a higher class, or kept on its CPU) does not move it: its vtime, charged as it runs,
 * would otherwise drag the global vtime ahead of the queue and (with --long-slice-cgroup's
 * 5 s slices) lift every queued task past the waiting ones.
 * Its knobs are read-only variables the loader sets before load, so a disabled knob is dead
 * code the verifier never sees:
 *   fail_verify     a store through a null pointer in ktstr_dispatch (verifier rejects)
 *   verify_loop     the same, after an unrolled 8-iteration loop (cycle collapse input)
 *   stall           ktstr_dispatch never moves a task: the sched_ext watchdog fires
 *   degrade         no idle-CPU wake-ups and 100 ms slices: works, but badly
 *   slow            ktstr_dispatch spins about 50 us before each dispatch
 *   crash_after_ns  scx_bpf_error() once this long has passed since ops.init
 *   ignore_weights  plain FIFO on the shared DSQ: every task gets the same share
 *   host_ignore_weights  (.bss, not .rodata) the same, switched at run time: the host writes it
 *                   into guest memory (ctx.writeVar) and every callback reads it afresh
 *   starve_cgroup   tasks of the cgroup with this (leaf) name wait in a DSQ of their own, taken
 *                   only by a CPU with nothing else to run (and, so the watchdog does not
 *                   fire, all of them once every STARVE_RELEASE_NS)
 *   long_slice_cgroup  tasks of the cgroup with this name get LONG_SLICE_NS slices; nothing
 *                   preempts them, so with more runnable tasks than CPUs the others wait
 * The cgroup names are compared with the name of the task's cgroup on the default
 * hierarchy (p->cgroups->dfl_cgrp->kn->name, CO-RE reads) each time the task wakes up or
 * is queued: the leaf directory's name, whichever controllers are enabled there.
 * nr_llcs is no knob but topology: the loader counts the machine's last-level caches and
 * ktstr_init creates one (spare) DSQ per LLC in a loop the verifier walks nr_llcs times, so
 * the program's verified_insns depends on the topology, as a real scheduler's does when it
 * bakes topology into .rodata.
 * ktstr_exit copies the exit kind, reason and message to .bss for the loader to print.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sched_ext_kfuncs.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0
#define NORMAL_SLICE_NS 20000000ULL   /* SCX_SLICE_DFL */
#define MAX_LEAD_NS (2 * NORMAL_SLICE_NS) /* how far a queued task's vtime may run ahead */
#define LONG_SLICE_NS 5000000000ULL   /* --long-slice-cgroup */
/* --starve-cgroup: the starved tasks all get one slice this often, inside the 30 s watchdog */
#define STARVE_RELEASE_NS 20000000000ULL
#define CGROUP_NAME_LEN 64             /* the loader refuses longer names */
#define WEIGHT_DFL 100                 /* cpu.weight's and p->scx.weight's default */
#define DEGRADED_SLICE_NS 100000000ULL
#define SLOW_SPIN_NS 50000ULL
#define SLOW_SPIN_MAX_ROUNDS 2048
#define NR_CPUS_SEEN 512
#define MAX_LLCS 64
#define LLC_DSQ_BASE 1
/* --starve-cgroup's queue: the first LLC DSQ, which ktstr_init always creates (nr_llcs >= 1)
 * and nothing else uses; ktstr_init stays as it was, and so do its verified_insns */
#define STARVE_DSQ LLC_DSQ_BASE

enum task_class {
	CLASS_NORMAL,
	CLASS_STARVED,  /* --starve-cgroup */
	CLASS_LONG,     /* --long-slice-cgroup */
};

const volatile bool fail_verify;
const volatile bool verify_loop;
const volatile bool stall;
const volatile bool degrade;
const volatile bool slow;
const volatile u64 crash_after_ns;
const volatile bool ignore_weights;
/* empty: the knob is off */
const volatile char starve_cgroup[CGROUP_NAME_LEN];
const volatile char long_slice_cgroup[CGROUP_NAME_LEN];
/* the machine's last-level caches, counted by the loader (1 when it cannot tell) */
const volatile u32 nr_llcs = 1;
/* the address the fail-verify store goes to; 0, read from .rodata so the compiler keeps the store */
const volatile u64 null_target;

/* written by the host into the running guest (a test's ctx.writeVar), read on every use */
u32 host_ignore_weights;
u64 started_ns;
u64 nr_enqueued;
u64 nr_direct;
u64 nr_dispatched;
u64 nr_starved_dispatched;
u64 nr_starve_releases;
/* cgroup cpu.weight changes seen (ktstr_cgroup_set_weight): a test's ctx.watch target */
u64 nr_weight_sets;
bool crashed;
/* the global vtime: the highest vtime of a task that started running from the shared DSQ */
u64 vtime_now;
/* --starve-cgroup: when the starved tasks were last released, and how many are still to go */
u64 starve_released_ns;
s64 starve_budget;
/* filled by ktstr_exit */
s32 exit_kind;
s64 exit_code;
char exit_reason[128];
char exit_msg[1024];

/* in .data, not .rodata: the kfunc takes a plain char * and the verifier treats it as writable memory */
static char crash_fmt[] = "scx-ktstr: --crash-after %llu s reached";

/* per cgroup: its cpu.weight */
struct cgroup_ctx {
	u32 weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgroup_ctx);
} cgroup_ctxs SEC(".maps");

/* per task */
struct task_ctx {
	u64 exec_at_running;   /* its se.sum_exec_runtime when it last started running */
	bool running;          /* between ktstr_running and ktstr_stopping */
	bool from_shared;      /* queued on the shared DSQ and not yet run since */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

static u64 slice_ns(void)
{
	return degrade ? DEGRADED_SLICE_NS : NORMAL_SLICE_NS;
}

static bool weights_ignored(void)
{
	return ignore_weights || host_ignore_weights;
}

static bool knob_on(const volatile char *name)
{
	return name[0] != 0;
}

/* true when the NUL-terminated `have` (up to CGROUP_NAME_LEN chars read) equals `want` */
static bool name_equals(const char *have, const volatile char *want)
{
	for (int i = 0; i < CGROUP_NAME_LEN; i++) {
		if (have[i] != want[i])
			return false;
		if (!have[i])
			return true;
	}
	return false;
}

/* Which knob, if any, applies to p: by the name of its default-hierarchy (leaf) cgroup. */
static enum task_class task_class(struct task_struct *p)
{
	/* one byte more than a name may have, so a longer kernel name never matches */
	char name[CGROUP_NAME_LEN + 1];
	const char *kname;

	if (!knob_on(starve_cgroup) && !knob_on(long_slice_cgroup))
		return CLASS_NORMAL;
	kname = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn, name);
	if (!kname || bpf_probe_read_kernel_str(name, sizeof(name), kname) < 0)
		return CLASS_NORMAL;
	if (knob_on(starve_cgroup) && name_equals(name, starve_cgroup))
		return CLASS_STARVED;
	if (knob_on(long_slice_cgroup) && name_equals(name, long_slice_cgroup))
		return CLASS_LONG;
	return CLASS_NORMAL;
}

static u64 class_slice_ns(enum task_class class)
{
	return class == CLASS_LONG ? LONG_SLICE_NS : slice_ns();
}

static bool vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

/* p's weight times WEIGHT_DFL: its cgroup's cpu.weight times its own (nice) weight */
static u64 scaled_weight(struct task_struct *p)
{
	struct cgroup_ctx *cctx;
	struct cgroup *cgrp;
	u64 cgroup_weight = WEIGHT_DFL, w;

	cgrp = scx_bpf_task_cgroup(p);
	if (cgrp) {
		cctx = bpf_cgrp_storage_get(&cgroup_ctxs, cgrp, 0, 0);
		if (cctx && cctx->weight)
			cgroup_weight = cctx->weight;
		bpf_cgroup_release(cgrp);
	}
	w = cgroup_weight * p->scx.weight;
	return w ? w : 1;
}

static void maybe_crash(void)
{
	unsigned long long args[1];

	if (!crash_after_ns || crashed)
		return;
	if (bpf_ktime_get_ns() - started_ns < crash_after_ns)
		return;
	crashed = true;
	args[0] = crash_after_ns / 1000000000ULL;
	scx_bpf_error_bstr(crash_fmt, args, sizeof(args));
}

SEC("struct_ops/ktstr_select_cpu")
s32 BPF_PROG(ktstr_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	enum task_class class;
	bool idle = false;
	s32 cpu;

	if (degrade || stall)
		return prev_cpu;
	class = task_class(p);
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);
	/* a starved task never skips its queue */
	if (idle && class != CLASS_STARVED) {
		__sync_fetch_and_add(&nr_direct, 1);
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL, class_slice_ns(class), 0);
	}
	return cpu;
}

SEC("struct_ops/ktstr_enqueue")
void BPF_PROG(ktstr_enqueue, struct task_struct *p, u64 enq_flags)
{
	enum task_class class = task_class(p);
	struct task_ctx *tctx;
	u64 vtime, floor;

	__sync_fetch_and_add(&nr_enqueued, 1);
	if (class == CLASS_STARVED) {
		scx_bpf_dispatch(p, STARVE_DSQ, slice_ns(), enq_flags);
		return;
	}
	if (weights_ignored()) {
		scx_bpf_dispatch(p, SHARED_DSQ, class_slice_ns(class), enq_flags);
		return;
	}
	tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	if (tctx)
		tctx->from_shared = true;
	/* no banked credit: at most one slice behind the global vtime */
	vtime = p->scx.dsq_vtime;
	floor = vtime_now > NORMAL_SLICE_NS ? vtime_now - NORMAL_SLICE_NS : 0;
	if (vtime_before(vtime, floor))
		vtime = floor;
	/* and no banked debt past MAX_LEAD_NS: a long burst (the guest agent forking a run's
	 * workers) would otherwise wait its whole lead out behind the spinners -- seconds */
	if (vtime_before(vtime_now + MAX_LEAD_NS, vtime))
		vtime = vtime_now + MAX_LEAD_NS;
	scx_bpf_dispatch_vtime(p, SHARED_DSQ, class_slice_ns(class), vtime, enq_flags);
}

/* --starve-cgroup: may this CPU take a starved task now? */
static bool take_starved(void)
{
	u64 now = bpf_ktime_get_ns(), since;

	/* every STARVE_RELEASE_NS, the tasks waiting then go first, one per dispatch */
	since = starve_released_ns ? starve_released_ns : started_ns;
	if (now - since >= STARVE_RELEASE_NS) {
		starve_released_ns = now;
		starve_budget = scx_bpf_dsq_nr_queued(STARVE_DSQ);
		__sync_fetch_and_add(&nr_starve_releases, 1);
	}
	if (starve_budget > 0 && scx_bpf_consume(STARVE_DSQ)) {
		__sync_fetch_and_sub(&starve_budget, 1);
		return true;
	}
	return false;
}

SEC("struct_ops/ktstr_dispatch")
void BPF_PROG(ktstr_dispatch, s32 cpu, struct task_struct *prev)
{
	if (fail_verify) {
		volatile u32 acc = 0;

		if (verify_loop) {
#pragma unroll
			for (int i = 0; i < 8; i++) {
				u64 t = bpf_ktime_get_ns();

				acc += (u32)t;
				acc ^= (u32)(t >> 32);
			}
		}
		/* the bug on purpose: null_target is 0, a scalar, not a pointer */
		*(volatile u32 *)null_target = acc;
	}
	maybe_crash();
	if (stall)
		return;
	if (slow) {
		u64 until = bpf_ktime_get_ns() + SLOW_SPIN_NS;

		for (int i = 0; i < SLOW_SPIN_MAX_ROUNDS; i++)
			if (bpf_ktime_get_ns() >= until)
				break;
	}
	if (knob_on(starve_cgroup) && take_starved()) {
		__sync_fetch_and_add(&nr_starved_dispatched, 1);
		return;
	}
	if (scx_bpf_consume(SHARED_DSQ)) {
		__sync_fetch_and_add(&nr_dispatched, 1);
		return;
	}
	if (!knob_on(starve_cgroup))
		return;
	/* nothing else queued; a runnable prev (not starved) keeps its CPU */
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED) && task_class(prev) != CLASS_STARVED)
		return;
	if (scx_bpf_consume(STARVE_DSQ))
		__sync_fetch_and_add(&nr_starved_dispatched, 1);
}

SEC("struct_ops/ktstr_running")
void BPF_PROG(ktstr_running, struct task_struct *p)
{
	struct task_ctx *tctx;

	if (weights_ignored())
		return;
	tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	if (!tctx)
		return;
	tctx->exec_at_running = p->se.sum_exec_runtime;
	tctx->running = true;
	if (!tctx->from_shared)
		return;
	tctx->from_shared = false;
	if (vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

SEC("struct_ops/ktstr_stopping")
void BPF_PROG(ktstr_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx;
	u64 used;

	if (weights_ignored())
		return;
	tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	if (!tctx || !tctx->running)
		return;
	/* the CPU time the kernel accounted to it (rq->clock_task, as the slice is: time stolen
	 * from a virtual CPU by its host does not count) */
	used = p->se.sum_exec_runtime - tctx->exec_at_running;
	tctx->running = false;
	/* used * 100 / weight, with weight = cgroup weight * task weight / 100 */
	p->scx.dsq_vtime += used * WEIGHT_DFL * WEIGHT_DFL / scaled_weight(p);
}

SEC("struct_ops/ktstr_init_task")
s32 BPF_PROG(ktstr_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (weights_ignored())
		return 0;
	/* without it the task is charged nothing: it still runs */
	bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	return 0;
}

SEC("struct_ops/ktstr_cgroup_init")
s32 BPF_PROG(ktstr_cgroup_init, struct cgroup *cgrp, struct scx_cgroup_init_args *args)
{
	struct cgroup_ctx *cctx;

	/* without it the cgroup counts with the default weight: no reason to refuse it */
	cctx = bpf_cgrp_storage_get(&cgroup_ctxs, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (cctx)
		cctx->weight = args->weight;
	return 0;
}

SEC("struct_ops/ktstr_cgroup_set_weight")
void BPF_PROG(ktstr_cgroup_set_weight, struct cgroup *cgrp, u32 weight)
{
	struct cgroup_ctx *cctx;

	cctx = bpf_cgrp_storage_get(&cgroup_ctxs, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (cctx)
		cctx->weight = weight;
	nr_weight_sets++;
}

SEC("struct_ops/ktstr_tick")
void BPF_PROG(ktstr_tick, struct task_struct *p)
{
	maybe_crash();
}

/* sleepable (the loader sets BPF_F_SLEEPABLE): scx_bpf_create_dsq allocates */
SEC("struct_ops/ktstr_init")
s32 BPF_PROG(ktstr_init)
{
	s32 err;

	started_ns = bpf_ktime_get_ns();
	err = scx_bpf_create_dsq(SHARED_DSQ, -1);
	if (err)
		return err;
	for (u32 i = 0; i < nr_llcs && i < MAX_LLCS; i++) {
		err = scx_bpf_create_dsq(LLC_DSQ_BASE + i, -1);
		if (err)
			return err;
	}
	return 0;
}

SEC("struct_ops/ktstr_exit")
void BPF_PROG(ktstr_exit, struct scx_exit_info *ei)
{
	exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(exit_reason, sizeof(exit_reason), ei->reason);
	bpf_probe_read_kernel_str(exit_msg, sizeof(exit_msg), ei->msg);
	/* written last: the loader polls it */
	exit_kind = ei->kind;
}

/* Two tables of the same programs; the loader creates one. ktstr_ops: the watchdog ends the
 * scheduler when a runnable task waited 5 s (--stall dies quickly). ktstr_patient_ops, for
 * --starve-cgroup and --long-slice-cgroup, whose tasks wait on purpose: 30 s, the most 6.12
 * allows. */
#define KTSTR_OPS(watchdog_ms) {						\
	.select_cpu = (void *)ktstr_select_cpu,				\
	.enqueue = (void *)ktstr_enqueue,				\
	.dispatch = (void *)ktstr_dispatch,				\
	.tick = (void *)ktstr_tick,					\
	.running = (void *)ktstr_running,				\
	.stopping = (void *)ktstr_stopping,				\
	.init_task = (void *)ktstr_init_task,				\
	.cgroup_init = (void *)ktstr_cgroup_init,			\
	.cgroup_set_weight = (void *)ktstr_cgroup_set_weight,		\
	.init = (void *)ktstr_init,					\
	.exit = (void *)ktstr_exit,					\
	/* only silences 6.12's "does not implement cgroup cpu.weight" */	\
	.flags = SCX_OPS_HAS_CGROUP_WEIGHT,				\
	.timeout_ms = (watchdog_ms),					\
	.name = "ktstr",						\
}

SEC(".struct_ops")
struct sched_ext_ops ktstr_ops = KTSTR_OPS(5000);

SEC(".struct_ops")
struct sched_ext_ops ktstr_patient_ops = KTSTR_OPS(30000);
