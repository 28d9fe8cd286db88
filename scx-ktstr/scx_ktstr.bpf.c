/* scx_ktstr.bpf.c - the BPF half of scx-ktstr, the ktstr-wasm fixture scheduler.
 *
 * A shared-queue scheduler: every task goes to one user DSQ and each CPU takes the first
 * task from it when its local queue runs dry (an idle CPU found at wake-up takes the task
 * directly). Its knobs are read-only variables the loader sets before load, so a disabled
 * knob is dead code the verifier never sees:
 *   fail_verify     a store through a null pointer in ktstr_dispatch (verifier rejects)
 *   verify_loop     the same, after an unrolled 8-iteration loop (cycle collapse input)
 *   stall           ktstr_dispatch never moves a task: the sched_ext watchdog fires
 *   degrade         no idle-CPU wake-ups and 100 ms slices: works, but badly
 *   slow            ktstr_dispatch spins about 50 us before each dispatch
 *   crash_after_ns  scx_bpf_error() once this long has passed since ops.init
 * nr_llcs is no knob but topology: the loader counts the machine's last-level caches and
 * ktstr_init creates one (spare) DSQ per LLC in a loop the verifier walks nr_llcs times, so
 * the program's verified_insns depends on the topology, as a real scheduler's does when it
 * bakes topology into .rodata.
 * ktstr_exit copies the exit kind, reason and message to .bss for the loader to print.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sched_ext_kfuncs.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0
#define NORMAL_SLICE_NS 20000000ULL   /* SCX_SLICE_DFL */
#define DEGRADED_SLICE_NS 100000000ULL
#define SLOW_SPIN_NS 50000ULL
#define SLOW_SPIN_MAX_ROUNDS 2048
#define NR_CPUS_SEEN 512
#define MAX_LLCS 64
#define LLC_DSQ_BASE 1

const volatile bool fail_verify;
const volatile bool verify_loop;
const volatile bool stall;
const volatile bool degrade;
const volatile bool slow;
const volatile u64 crash_after_ns;
/* the machine's last-level caches, counted by the loader (1 when it cannot tell) */
const volatile u32 nr_llcs = 1;
/* the address the fail-verify store goes to; 0, read from .rodata so the compiler keeps the store */
const volatile u64 null_target;

u64 started_ns;
u64 nr_enqueued;
u64 nr_direct;
u64 nr_dispatched;
bool crashed;
/* filled by ktstr_exit */
s32 exit_kind;
s64 exit_code;
char exit_reason[128];
char exit_msg[1024];

/* in .data, not .rodata: the kfunc takes a plain char * and the verifier treats it as writable memory */
static char crash_fmt[] = "scx-ktstr: --crash-after %llu s reached";

static u64 slice_ns(void)
{
	return degrade ? DEGRADED_SLICE_NS : NORMAL_SLICE_NS;
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
	bool idle = false;
	s32 cpu;

	if (degrade || stall)
		return prev_cpu;
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);
	if (idle) {
		__sync_fetch_and_add(&nr_direct, 1);
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL, slice_ns(), 0);
	}
	return cpu;
}

SEC("struct_ops/ktstr_enqueue")
void BPF_PROG(ktstr_enqueue, struct task_struct *p, u64 enq_flags)
{
	__sync_fetch_and_add(&nr_enqueued, 1);
	scx_bpf_dispatch(p, SHARED_DSQ, slice_ns(), enq_flags);
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
	if (scx_bpf_consume(SHARED_DSQ))
		__sync_fetch_and_add(&nr_dispatched, 1);
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

SEC(".struct_ops")
struct sched_ext_ops ktstr_ops = {
	.select_cpu = (void *)ktstr_select_cpu,
	.enqueue = (void *)ktstr_enqueue,
	.dispatch = (void *)ktstr_dispatch,
	.tick = (void *)ktstr_tick,
	.init = (void *)ktstr_init,
	.exit = (void *)ktstr_exit,
	/* the watchdog: a runnable task left waiting this long aborts the scheduler (--stall) */
	.timeout_ms = 5000,
	.name = "ktstr",
};
