/* ktstr-worker: one worker process. It joins its cgroup, sets affinity, policy and nice,
 * reads the policy back, counts itself ready and parks on the phase word; from `start` it
 * does its kind of work, measuring every unit (meas.c), until the phase word says stop;
 * then it writes <dir>/<index>.json and exits. Blocking waits end at stop: the launcher
 * wakes the futex words and sends SIGUSR1 (a handler without SA_RESTART, so sleeps, reads
 * and waits return EINTR), and pipe and futex waits also time out every 100 ms. */

#include "kw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define WAIT_SLICE_NS 100000000ull   /* pipe and futex waits look at the phase this often */
#define ACK_TIMEOUT_NS 10000000ull   /* a futex waker waits this long at most for its waiters */
#define MIXED_CYCLE 22               /* mixed: 20 spin units, one 50 µs sleep, one yield */
#define MIXED_SLEEP_NS 50000ull

struct sched_attr_v0 {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

static struct control *ctl;
static struct meas m;
static char err[512];
static uint64_t spin_sink;

static void on_stop_signal(int sig) { (void)sig; }

static bool stopped(void) { return load32(&ctl->phase) == PHASE_STOP; }

static void spin_unit(void)
{
	uint64_t x = spin_sink | 1;
	for (int i = 0; i < SPIN_UNIT; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	__atomic_store_n(&spin_sink, x, __ATOMIC_RELAXED);
}

/* Until the phase word says stop (every phase change wakes it). */
static void wait_stop(void)
{
	uint32_t p;
	while ((p = load32(&ctl->phase)) != PHASE_STOP)
		futex_wait(&ctl->phase, p, 0);
}

static void setup(struct worker_spec *w)
{
	if (strcmp(w->cgroup, "-")) {
		char path[4096], pid[32];
		snprintf(path, sizeof path, "%s/cgroup.procs", w->cgroup);
		int n = snprintf(pid, sizeof pid, "%d\n", getpid());
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, pid, (size_t)n) != n) {
			snprintf(err, sizeof err, "cgroup %s: %s", w->cgroup, strerror(errno));
			if (fd >= 0)
				close(fd);
			return;
		}
		close(fd);
	}
	if (w->has_affinity && sched_setaffinity(0, sizeof w->affinity, &w->affinity) != 0) {
		snprintf(err, sizeof err, "affinity: %s", strerror(errno));
		return;
	}
	struct sched_attr_v0 a = { .size = sizeof a, .sched_policy = (uint32_t)w->policy };
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	a.sched_nice = w->has_nice ? w->nice : (errno ? 0 : nice);
	if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
		snprintf(err, sizeof err, "sched_setattr policy %d nice %d: %s%s", w->policy, a.sched_nice,
			 strerror(errno), w->policy == 7 && errno == EINVAL ? " (no sched_ext in this kernel?)" : "");
}

/* Run for run_ns in spin units (time samples, no iterations), then sleep sleep_ns to an
 * absolute target: the cycle is one iteration, its wake latency actual - target. */
static void run_sleep(uint64_t run_ns, uint64_t sleep_ns)
{
	for (;;) {
		uint64_t end = m.prev_end + run_ns;
		while (m.prev_end < end) {
			spin_unit();
			if (!meas_mark(&m, 0, 0, false))
				return;
		}
		uint64_t block = m.prev_end, target = block + sleep_ns;
		struct timespec ts = { (time_t)(target / 1000000000u), (long)(target % 1000000000u) };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (!meas_mark(&m, block, target, true))
			return;
	}
}

static void mixed(void)
{
	for (unsigned k = 0;; k = (k + 1) % MIXED_CYCLE) {
		bool go;
		if (k < MIXED_CYCLE - 2) {
			spin_unit();
			go = meas_mark(&m, 0, 0, true);
		} else if (k == MIXED_CYCLE - 2) {
			uint64_t block = m.prev_end, target = block + MIXED_SLEEP_NS;
			struct timespec ts = { (time_t)(target / 1000000000u), (long)(target % 1000000000u) };
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			go = meas_mark(&m, block, target, true);
		} else {
			sched_yield();
			go = meas_mark(&m, 0, 0, true);
		}
		if (!go)
			return;
	}
}

static bool send_token(int fd)
{
	uint64_t stamp = mono_ns();
	return write(fd, &stamp, sizeof stamp) == (ssize_t)sizeof stamp;
}

/* 1: a token (its stamp in *stamp), 0: the peer is gone, -1: stop. */
static int recv_token(int fd, uint64_t *stamp)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(WAIT_SLICE_NS / 1000000));
		if (stopped())
			return -1;
		if (r < 0 && errno != EINTR)
			return 0;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, stamp, sizeof *stamp);
		if (n == (ssize_t)sizeof *stamp)
			return 1;
		if (n < 0 && errno == EINTR)
			continue;
		return 0; /* EOF: the peer ended (or failed its setup) */
	}
}

static void pingpong(struct worker_spec *w)
{
	if (w->initiator && !send_token(w->wfd))
		return;
	for (;;) {
		uint64_t stamp, block = mono_ns();
		int r = recv_token(w->rfd, &stamp);
		if (r <= 0 || !meas_mark(&m, block, stamp, true) || !send_token(w->wfd))
			return;
	}
}

static void futex_waiter(struct futex_group *g)
{
	uint32_t seen = 0; /* rounds start after `ready`: seq was 0 when this worker registered */
	for (;;) {
		uint64_t block = mono_ns();
		uint32_t cur;
		while ((cur = load32(&g->seq)) == seen) {
			futex_wait(&g->seq, seen, WAIT_SLICE_NS);
			if (stopped())
				return;
		}
		uint64_t stamp = __atomic_load_n(&g->stamp, __ATOMIC_ACQUIRE);
		bool go = meas_mark(&m, block, stamp, true);
		seen = cur;
		if (__atomic_add_fetch(&g->acks, 1, __ATOMIC_ACQ_REL) >= load32(&g->waiters))
			futex_wake(&g->acks, 1);
		if (!go)
			return;
	}
}

static void futex_waker(struct futex_group *g)
{
	for (;;) {
		spin_unit();
		spin_unit();
		__atomic_store_n(&g->acks, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&g->stamp, mono_ns(), __ATOMIC_RELEASE);
		__atomic_add_fetch(&g->seq, 1, __ATOMIC_ACQ_REL);
		futex_wake(&g->seq, INT_MAX);
		uint32_t want = load32(&g->waiters), a;
		uint64_t block = mono_ns(), deadline = block + ACK_TIMEOUT_NS;
		while ((a = load32(&g->acks)) < want && !stopped() && mono_ns() < deadline)
			futex_wait(&g->acks, a, 1000000);
		if (!meas_mark(&m, block, 0, true))
			return;
	}
}

static void forkexec(void)
{
	for (;;) {
		pid_t pid = fork();
		if (pid == 0) {
			char *argv[] = { "ktstr-worker", "--noop", NULL };
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		if (pid < 0) {
			snprintf(err, sizeof err, "forkexec: fork: %s", strerror(errno));
			return;
		}
		uint64_t block = mono_ns();
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			snprintf(err, sizeof err, "forkexec: /proc/self/exe --noop ended with status 0x%x", status);
			return;
		}
		if (!meas_mark(&m, block, 0, true))
			return;
	}
}

static void run(struct worker_spec *w)
{
	switch (w->work) {
	case W_SPIN:
		while (spin_unit(), meas_mark(&m, 0, 0, true))
			;
		break;
	case W_YIELD:
		while (spin_unit(), sched_yield(), meas_mark(&m, 0, 0, true))
			;
		break;
	case W_SLEEPY:
	case W_BURST: run_sleep(w->run_ns, w->sleep_ns); break;
	case W_MIXED: mixed(); break;
	case W_PINGPONG: pingpong(w); break;
	case W_FORKEXEC: forkexec(); break;
	case W_FUTEX:
		w->waker ? futex_waker(&ctl->groups[w->group]) : futex_waiter(&ctl->groups[w->group]);
		break;
	default: break;
	}
}

/* Every pipe end but the worker's own (those of other pairs would keep a peer's pipe open
 * after the peer ends): close_range around them, one close per descriptor if the kernel has
 * no close_range. Descriptors 0-2 stay. */
static void close_others(struct spec *s, struct worker_spec *w)
{
	unsigned lo = 3;
	unsigned keep[2] = { (unsigned)w->rfd, (unsigned)w->wfd };
	if (keep[0] > keep[1]) {
		unsigned t = keep[0];
		keep[0] = keep[1];
		keep[1] = t;
	}
	bool ok = true;
	if (w->rfd >= 0) {
		for (int k = 0; k < 2; k++) {
			if (keep[k] > lo && close_range(lo, keep[k] - 1, 0) != 0)
				ok = false;
			lo = keep[k] + 1;
		}
	}
	if (ok && close_range(lo, ~0u, 0) == 0)
		return;
	for (unsigned i = 0; i < s->n; i++)
		if (&s->w[i] != w && s->w[i].rfd >= 0) {
			close(s->w[i].rfd);
			close(s->w[i].wfd);
		}
}

/*
 * The spawn tree: worker i creates workers 2i+1 and 2i+2 before its own setup, so forks run
 * on every CPU rather than one after another in the launcher (fork is the cost of a launch).
 * CLONE_PARENT makes them the launcher's children: it waits for them and sees them die. The
 * raw clone leaves glibc's cached thread id stale in the new process; workers use nothing
 * that reads it (raise, abort, pthread_kill, robust or error-checking mutexes).
 */
static unsigned spawn_subtree(struct spec *s, unsigned self)
{
	for (unsigned k = 1; k <= 2; k++) {
		unsigned c = 2 * self + k;
		if (c >= s->n)
			break;
		long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
		if (pid == 0)
			return spawn_subtree(s, c);
		if (pid < 0) {
			fprintf(stderr, "ktstr-worker: worker %u: clone: %s\n", s->w[c].index, strerror(errno));
			__atomic_add_fetch(&ctl->spawn_failed, 1, __ATOMIC_ACQ_REL);
			futex_wake(&ctl->ready, 1);
		}
	}
	return self;
}

_Noreturn void worker_main(struct spec *s, unsigned self, struct control *c, int launcher_pid, int32_t *pid_table)
{
	ctl = c;
	self = spawn_subtree(s, self);
	struct worker_spec *w = &s->w[self];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != launcher_pid)
		_exit(1);
	__atomic_store_n(&pid_table[self], getpid(), __ATOMIC_RELEASE);
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	close_others(s, w);

	setup(w);
	struct sched_attr_v0 a = { .size = sizeof a };
	int policy = -1, nice = 0;
	if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) == 0) {
		policy = (int)a.sched_policy;
		nice = a.sched_nice;
	}
	bool latency = w->work == W_SLEEPY || w->work == W_BURST || w->work == W_MIXED || w->work == W_PINGPONG ||
		       (w->work == W_FUTEX && !w->waker);
	if (meas_init(&m, &ctl->phase, s->ncpu, latency) != 0 && !err[0])
		snprintf(err, sizeof err, "out of memory");
	if (err[0] && w->rfd >= 0) {
		close(w->rfd); /* the peer reads EOF, or EPIPE on writing, and waits for stop */
		close(w->wfd);
	}
	if (!err[0] && w->work == W_FUTEX && !w->waker)
		__atomic_add_fetch(&ctl->groups[w->group].waiters, 1, __ATOMIC_ACQ_REL);
	if (__atomic_add_fetch(&ctl->ready, 1, __ATOMIC_ACQ_REL) == s->n)
		futex_wake(&ctl->ready, 1); /* the last one wakes the launcher */

	while (load32(&ctl->phase) == 0)
		futex_wait(&ctl->phase, 0, 0);

	uint64_t cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t start = __atomic_load_n(&ctl->start_ns, __ATOMIC_ACQUIRE);
	meas_begin(&m, start);
	if (!err[0] && !stopped())
		run(w);
	wait_stop(); /* already there, unless the work ended early (peer gone, error) */
	uint64_t end = mono_ns();
	uint64_t cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	getrusage(RUSAGE_SELF, &ru1);

	struct report_head h = {
		.index = w->index,
		.pid = getpid(),
		.work = work_names[w->work],
		.policy = policy,
		.nice = nice,
		.cpu_time_ns = cpu1 - cpu0,
		.wall_ns = start && end > start ? end - start : 0,
		.vol = ru1.ru_nvcsw - ru0.ru_nvcsw,
		.invol = ru1.ru_nivcsw - ru0.ru_nivcsw,
		.error = err[0] ? err : NULL,
	};
	if (report_write(s->dir, &h, &m) != 0) {
		fprintf(stderr, "ktstr-worker: worker %u: writing its report in %s: %s\n", w->index, s->dir, strerror(errno));
		_exit(1);
	}
	_exit(0);
}
