/* sched_ext_kfuncs.h - the sched_ext kernel functions scx-ktstr calls, declared for BPF.
 *
 * Linux 6.12 names and signatures, checked against the kernel's BTF
 * (`bpftool btf dump file vmlinux format raw | grep scx_bpf_`). Types come from the
 * vmlinux.h generated from the same kernel, so this header needs no kernel source tree.
 * Later kernels renamed some of these (scx_bpf_dsq_insert, scx_bpf_dsq_move_to_local).
 */
#ifndef SCX_KTSTR_KFUNCS_H
#define SCX_KTSTR_KFUNCS_H

/* queue task p on DSQ dsq_id with a time slice (ns) */
extern void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
/* queue task p on user DSQ dsq_id ordered by vtime (and set p->scx.dsq_vtime to it) */
extern void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __ksym;
/* the number of tasks queued on DSQ dsq_id */
extern s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
/* p's cgroup on the cpu controller (acquired: release it with bpf_cgroup_release) */
extern struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym;
extern void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
/* move the first task of DSQ dsq_id to this CPU's local DSQ; true when one was moved */
extern bool scx_bpf_consume(u64 dsq_id) __ksym;
/* create a user DSQ (sleepable context only: ops.init) */
extern s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
/* the default idle-CPU selection; *is_idle says whether the CPU returned was idle */
extern s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __ksym;
/* abort the scheduler with a formatted message: fmt with data[] (data__sz bytes) as args */
extern void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;

#endif
