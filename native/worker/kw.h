/* ktstr-worker: the definitions its parts share — the parsed spec, the control file's
 * layout (the one memory the launcher and every worker map), the per-worker measurement
 * state, and small inline helpers (clock, futex, spin unit). See docs/worker-protocol.md. */

#ifndef KTSTR_WORKER_KW_H
#define KTSTR_WORKER_KW_H

#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 4096
#define MAX_PHASES 64          /* distinct phases a worker keeps per-phase usage for */
#define LAT_CAP 16384          /* latency samples kept per worker (reservoir beyond) */
#define ON_CPU_CAP_NS 1000000u /* longer than this between two samples: off CPU */
#define SPIN_UNIT 2000         /* xorshift steps in one unit of spin work (~2 µs) */
#define PHASE_STOP 0xFFFFFFFFu
#define PHASE_TRANSITION 0x80000000u /* set: an operation is being applied; no CPU attributed */

enum work_kind { W_SPIN, W_YIELD, W_SLEEPY, W_BURST, W_PINGPONG, W_FORKEXEC, W_FUTEX, W_MIXED, W_NKINDS };
extern const char *const work_names[W_NKINDS];

/* One `worker` line of the spec. */
struct worker_spec {
	int line;                /* line number in the spec file */
	unsigned index;
	char *cgroup;            /* "-": stay where started */
	enum work_kind work;
	bool has_affinity;
	cpu_set_t affinity;
	bool has_nice;
	int nice;
	int policy;              /* SCHED_* number: 0 normal, 3 batch, 5 idle, 7 ext */
	uint64_t run_ns, sleep_ns; /* sleepy: run_us, sleep_us; burst: burst_ms, idle_ms */
	long pair;               /* pingpong: pair id */
	long fanout;             /* futex: group id */
	bool waker;              /* futex: role=waker */
	/* resolved by the loader and the launcher */
	int group;               /* futex: slot in the control file */
	bool initiator;          /* pingpong: sends the first token */
	int rfd, wfd;            /* pingpong: pipe ends, -1 otherwise */
};

struct spec {
	const char *path;
	char *dir;
	unsigned n;
	struct worker_spec *w;   /* n entries, in file order */
	int ngroups;             /* futex groups */
	int ncpu;                /* possible CPUs (get_nprocs_conf), found once by the launcher */
};

/* Parses and checks the spec file; on error prints `ktstr-worker: FILE:LINE: why` and
 * returns -1 (nothing has been started). */
int spec_load(const char *path, struct spec *s);

/* ---- control file: 4096 bytes, MAP_SHARED by the launcher and every worker ---- */

struct futex_group {          /* 32 bytes at 64 + 32 * slot */
	uint32_t seq;             /* bumped by the waker each round (and by the launcher at stop) */
	uint32_t waiters;         /* waiters that set up fine (they register before `ready`) */
	uint32_t acks;            /* waiters done with the current round */
	uint32_t pad;
	uint64_t stamp;           /* CLOCK_MONOTONIC ns the waker stored before bumping seq */
	uint64_t pad2;
};

#define CONTROL_SIZE 4096
#define MAX_FUTEX_GROUPS ((CONTROL_SIZE - 64) / (int)sizeof(struct futex_group))

struct control {
	uint32_t phase;           /* @0: 0 parked, N running in phase N, PHASE_STOP */
	uint32_t pad0;
	uint64_t start_ns;        /* @8: CLOCK_MONOTONIC of `start` */
	uint32_t ready;           /* @16: workers set up and parked */
	uint32_t spawn_failed;    /* @20: a worker could not create its part of the tree */
	uint32_t pad1[10];
	struct futex_group groups[MAX_FUTEX_GROUPS]; /* @64 */
};
_Static_assert(offsetof(struct control, start_ns) == 8, "start time at 8");
_Static_assert(offsetof(struct control, ready) == 16, "ready count at 16");
_Static_assert(offsetof(struct control, groups) == 64, "futex groups at 64");
_Static_assert(sizeof(struct control) <= CONTROL_SIZE, "control fits its file");

/* ---- measurement (meas.c) ---- */

struct phase_use {
	uint32_t phase;
	uint64_t iterations;
	uint64_t *cpu_ns;         /* ncpu entries */
};

struct meas {
	const uint32_t *phase_word;
	int ncpu;
	uint64_t start_ns;        /* control start time */
	uint64_t prev_end;        /* `now` of the previous sample */
	int prev_cpu;
	uint64_t iterations, migrations;
	uint64_t *cpu_ns;
	struct phase_use phases[MAX_PHASES];
	int nphases, cur;
	uint64_t max_gap, max_gap_at;
	int max_gap_cpu;
	bool latency;             /* this worker measures wakeups */
	uint64_t wakeups, lat_kept, lat_max, rng;
	uint64_t *lat;
};

/* What a report says besides the measurement. */
struct report_head {
	unsigned index;
	int pid;
	const char *work;
	int policy, nice;
	uint64_t cpu_time_ns, wall_ns;
	long vol, invol;
	const char *error;        /* NULL: fine */
};

int meas_init(struct meas *m, const uint32_t *phase_word, int ncpu, bool latency);
void meas_begin(struct meas *m, uint64_t start_ns);
bool meas_mark(struct meas *m, uint64_t block_start, uint64_t lat_ref, bool iteration);
int report_write(const char *dir, const struct report_head *h, struct meas *m);

/* ---- the worker process (work.c) ---- */

/* Worker `self`: spawns its part of the spawn tree, records its pid in pid_table[self],
 * then sets itself up, parks, works, reports and exits. */
_Noreturn void worker_main(struct spec *s, unsigned self, struct control *ctl, int launcher_pid, int32_t *pid_table);

/* ---- helpers ---- */

static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint32_t load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* Shared (not FUTEX_PRIVATE): the words live in a MAP_SHARED file mapping. */
static inline long futex_wait(uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u) };
	return syscall(SYS_futex, word, FUTEX_WAIT, val, timeout_ns ? &ts : NULL, NULL, 0);
}

static inline long futex_wake(uint32_t *word, int n)
{
	return syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

#endif
