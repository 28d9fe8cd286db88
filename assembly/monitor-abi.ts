// The runqueue sampler's ABI, written once: AssemblyScript (assembly/introspect.ts) and
// TypeScript (src/monitor/runqueues.ts) both import these plain integer constants, so the two
// sides cannot disagree on a record layout or an offset-table index. Keep every value a
// literal integer (valid as an AssemblyScript i32 and a TypeScript number).

// ---- monitor offset table (setMonitorOffset(index, value)); ABSENT = the kernel has no such field
export const MON_ABSENT = -1;
export const MON_RQ_NR_RUNNING = 0;
export const MON_RQ_CFS_NR_RUNNING = 1; // rq.cfs + cfs_rq.nr_running
export const MON_RQ_SCX_NR_RUNNING = 2; // rq.scx + scx_rq.nr_running
export const MON_RQ_SCX_FLAGS = 3; // rq.scx + scx_rq.flags
export const MON_RQ_LOCAL_DSQ_NR = 4; // rq.scx + scx_rq.local_dsq + scx_dispatch_q.nr
export const MON_RQ_RUNNABLE_LIST = 5; // rq.scx + scx_rq.runnable_list (list_head)
export const MON_RQ_CURR = 6;
export const MON_RQ_CLOCK = 7;
export const MON_RQ_CPU = 8;
export const MON_TASK_PID = 9;
export const MON_TASK_COMM = 10;
export const MON_TASK_POLICY = 11;
export const MON_TASK_RUNNABLE_NODE = 12; // task_struct.scx + sched_ext_entity.runnable_node
export const MON_TASK_RUNNABLE_AT = 13; // task_struct.scx + sched_ext_entity.runnable_at
export const MON_RQ_PREV_STEAL_TIME = 14; // rq.prev_steal_time (CONFIG_PARAVIRT)
export const MON_COUNT = 15;

// ---- one runqueue record (sampleRunqueues output), little-endian
export const RQ_RECORD_SIZE = 104;
export const RQ_KVA = 0; // u64 this CPU's struct rq
export const RQ_CLOCK = 8; // u64 rq->clock (ns)
export const RQ_CURR_KVA = 16; // u64 rq->curr
export const RQ_OLDEST_RUNNABLE_AT = 24; // u64 min runnable_at (jiffies) over the scx runnable list
export const RQ_NR_RUNNING = 32; // u32
export const RQ_CFS_NR = 36; // u32
export const RQ_SCX_NR = 40; // u32
export const RQ_LOCAL_DSQ_NR = 44; // u32
export const RQ_CURR_PID = 48; // u32
export const RQ_CURR_POLICY = 52; // u32
export const RQ_SCX_FLAGS = 56; // u32
export const RQ_OLDEST_PID = 60; // u32 pid of that task
export const RQ_RUNNABLE_COUNT = 64; // u32 tasks on the runnable list (walked)
export const RQ_FLAGS = 68; // u32 RQF_* below
export const RQ_COMM = 72; // 16 bytes: the current task's comm
export const RQ_CPU = 88; // u32 rq->cpu as the kernel stored it
export const RQ_STEAL = 96; // u64 rq->prev_steal_time (ns the vCPU was not running, as accounted at its ticks; 0 when absent)
export const RQ_OUT_RECORDS = 512; // records per sampleRunqueues call

// RQ_FLAGS bits
export const RQF_READ = 1; // the rq was readable
export const RQF_CURR = 2; // rq->curr was readable (pid, policy, comm)
export const RQF_SCX = 4; // the sched_ext fields were read
export const RQF_LIST_TRUNCATED = 8; // the runnable list walk hit its bound
export const RQF_LIST_BROKEN = 16; // a link of the runnable list was unreadable
export const RQF_NO_CPU = 32; // no per-CPU offset for this CPU

/** Runnable-list steps one sampleRunqueues call may take over all its CPUs; a list cut by it is RQF_LIST_TRUNCATED. */
export const RQ_STEP_BUDGET = 262144;
