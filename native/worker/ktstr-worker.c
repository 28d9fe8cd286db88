/* ktstr-worker SPECFILE: the workload launcher of scheduler tests. It reads the spec
 * (spec.c), creates <dir>/control and the pingpong pipes, forks one process per worker
 * (work.c), waits until every one is set up and parked, says `ready`, then obeys its stdin
 * (`start`, `phase N`, `stop`, `kill`; EOF = stop) and answers on stdout. docs/worker-protocol.md
 * is the contract with the guest agent. `ktstr-worker --noop` exits at once: forkexec's exec. */

#include "kw.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#define STOP_GRACE_NS 10000000000ull  /* after this, workers that have not stopped are killed */

static struct spec spec;
static struct control *ctl;
static pid_t *pids;     /* per spec entry; 0 once reaped */
static int32_t *pid_table; /* shared: each worker writes its own pid before it counts ready */
static unsigned alive;

static void reap(pid_t pid, int status, bool quiet)
{
	for (unsigned i = 0; i < spec.n; i++)
		if (pids[i] == pid) {
			pids[i] = 0;
			alive--;
			if (!quiet && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
				fprintf(stderr, "ktstr-worker: worker %u (pid %d) ended with status 0x%x: no report\n",
					spec.w[i].index, pid, status);
			return;
		}
}

static void kill_all(int sig)
{
	for (unsigned i = 0; i < spec.n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

static void reap_all_blocking(bool quiet)
{
	int status;
	pid_t pid;
	while (alive > 0 && ((pid = wait(&status)) > 0 || errno == EINTR))
		if (pid > 0)
			reap(pid, status, quiet);
}

static int make_pipes(void)
{
	for (unsigned i = 0; i < spec.n; i++) {
		struct worker_spec *a = &spec.w[i];
		if (a->work != W_PINGPONG || a->rfd != -2)
			continue;
		unsigned j = i + 1;
		while (spec.w[j].work != W_PINGPONG || spec.w[j].pair != a->pair)
			j++;
		struct worker_spec *b = &spec.w[j];
		int ab[2], ba[2];
		if (pipe2(ab, O_CLOEXEC) != 0)
			return -1;
		if (pipe2(ba, O_CLOEXEC) != 0)
			return -1;
		a->wfd = ab[1], b->rfd = ab[0];
		b->wfd = ba[1], a->rfd = ba[0];
	}
	return 0;
}

static void close_pipes(void)
{
	for (unsigned i = 0; i < spec.n; i++)
		if (spec.w[i].rfd >= 0) {
			close(spec.w[i].rfd);
			close(spec.w[i].wfd);
		}
}

/* Every worker set up and parked; a worker that dies first fails the launch. */
static int wait_ready(void)
{
	uint32_t r;
	while ((r = load32(&ctl->ready)) < spec.n) {
		futex_wait(&ctl->ready, r, 100000000);
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			fprintf(stderr, "ktstr-worker: a worker (pid %d) ended with status 0x%x before it was ready\n", pid, status);
			return -1;
		}
		if (load32(&ctl->spawn_failed))
			return -1;
	}
	return 0;
}

static void set_phase(uint32_t phase)
{
	__atomic_store_n(&ctl->phase, phase, __ATOMIC_RELEASE);
	futex_wake(&ctl->phase, INT_MAX);
}

/* Stop: phase word, futex groups, SIGUSR1 for blocked sleeps, repeated until all are gone. */
static void stop_all(void)
{
	set_phase(PHASE_STOP);
	for (int g = 0; g < spec.ngroups; g++) {
		__atomic_add_fetch(&ctl->groups[g].seq, 1, __ATOMIC_ACQ_REL);
		futex_wake(&ctl->groups[g].seq, INT_MAX);
		futex_wake(&ctl->groups[g].acks, INT_MAX);
	}
	uint64_t t0 = mono_ns(), last_signal = 0;
	while (alive > 0) {
		uint64_t now = mono_ns();
		if (now - t0 > STOP_GRACE_NS) {
			fprintf(stderr, "ktstr-worker: %u worker(s) did not stop within %llu s: killed\n", alive,
				STOP_GRACE_NS / 1000000000ull);
			kill_all(SIGKILL);
			reap_all_blocking(true);
			break;
		}
		if (now - last_signal > 100000000) {
			kill_all(SIGUSR1);
			last_signal = now;
		}
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0)
			reap(pid, status, false);
		else
			usleep(2000);
	}
}

static int by_index(const void *a, const void *b)
{
	unsigned x = spec.w[*(const unsigned *)a].index, y = spec.w[*(const unsigned *)b].index;
	return x < y ? -1 : x > y;
}

static void print_ready(uint64_t spawn_ns)
{
	unsigned *order = malloc(spec.n * sizeof *order);
	printf("ready %llu", (unsigned long long)spawn_ns);
	if (order) {
		for (unsigned i = 0; i < spec.n; i++)
			order[i] = i;
		qsort(order, spec.n, sizeof *order, by_index);
		for (unsigned i = 0; i < spec.n; i++)
			printf(" %d", pids[order[i]]);
		free(order);
	}
	printf("\n");
	fflush(stdout);
}

/* stdin commands until stop, kill or EOF. */
static void command_loop(void)
{
	char line[256];
	uint32_t phase = 0;
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		unsigned long n;
		char extra;
		unsigned long first = 1;
		if (!strcmp(line, "start") || (sscanf(line, "start %lu%c", &first, &extra) == 1 && first >= 1 && first < PHASE_STOP)) {
			if (phase != 0) {
				fprintf(stderr, "ktstr-worker: start: already started\n");
				continue;
			}
			uint64_t t = mono_ns();
			__atomic_store_n(&ctl->start_ns, t, __ATOMIC_RELEASE);
			set_phase(phase = (uint32_t)first);
			printf("started %llu\n", (unsigned long long)t);
		} else if (sscanf(line, "phase %lu%c", &n, &extra) == 1) {
			/* phases increase; N | PHASE_TRANSITION comes before N itself */
			uint32_t cur = phase & ~PHASE_TRANSITION, next = (uint32_t)n & ~PHASE_TRANSITION;
			bool ends_transition = (phase & PHASE_TRANSITION) && n == cur;
			if (phase == 0 || n >= PHASE_STOP || n == 0 || (next <= cur && !ends_transition)) {
				fprintf(stderr, "ktstr-worker: phase %lu: %s\n", n,
					phase == 0 ? "not started" : "phases must increase");
				continue;
			}
			set_phase(phase = (uint32_t)n);
			printf("phase %u\n", phase);
		} else if (!strcmp(line, "stop")) {
			break;
		} else if (!strcmp(line, "kill")) {
			kill_all(SIGKILL);
			reap_all_blocking(true);
			return;
		} else if (line[0] != '\0') {
			fprintf(stderr, "ktstr-worker: unknown command '%s' (start, phase N, stop, kill)\n", line);
		}
		fflush(stdout);
	}
	stop_all();
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--noop"))
		return 0;
	uint64_t t0 = mono_ns();
	if (argc != 2) {
		fprintf(stderr, "usage: ktstr-worker SPECFILE (see docs/worker-protocol.md)\n");
		return 2;
	}
	if (spec_load(argv[1], &spec) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	spec.ncpu = get_nprocs_conf(); /* reads sysfs: once here, not in every worker */

	char path[4200];
	snprintf(path, sizeof path, "%s/control", spec.dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, CONTROL_SIZE) != 0) {
		fprintf(stderr, "ktstr-worker: %s: %s\n", path, strerror(errno));
		return 1;
	}
	ctl = mmap(NULL, CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	pids = calloc(spec.n, sizeof *pids);
	pid_table = mmap(NULL, spec.n * sizeof *pid_table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED || !pids || pid_table == MAP_FAILED) {
		fprintf(stderr, "ktstr-worker: control mapping: %s\n", strerror(errno));
		return 1;
	}
	struct rlimit nofile; /* two pipes per pingpong pair: allow as many descriptors as we may */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (make_pipes() != 0) {
		fprintf(stderr, "ktstr-worker: pipes for pingpong: %s\n", strerror(errno));
		return 1;
	}

	fflush(stdout);
	fflush(stderr);
	int self = getpid();
	pid_t pid = fork(); /* worker 0, the root of the spawn tree (work.c) */
	if (pid == 0)
		worker_main(&spec, 0, ctl, self, pid_table);
	if (pid < 0) {
		fprintf(stderr, "ktstr-worker: fork: %s\n", strerror(errno));
		return 1;
	}
	close_pipes();
	int ready = wait_ready();
	for (unsigned i = 0; i < spec.n; i++)
		if ((pids[i] = __atomic_load_n(&pid_table[i], __ATOMIC_ACQUIRE)) > 0)
			alive++;
	if (ready != 0) {
		kill_all(SIGKILL); /* those not yet in the table die with the launcher (PDEATHSIG) */
		reap_all_blocking(true);
		return 1;
	}
	print_ready(mono_ns() - t0);
	command_loop();
	printf("stopped\n");
	fflush(stdout);
	return 0;
}
