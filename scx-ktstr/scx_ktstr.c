/* scx_ktstr.c - the loader of scx-ktstr, the ktstr-wasm fixture scheduler.
 *
 * Sets the knobs in the BPF program's .rodata, loads it (libbpf, through the generated
 * skeleton), attaches one of its two sched_ext_ops struct_ops maps (ktstr_ops with a 5 s
 * watchdog; ktstr_patient_ops with 30 s for --starve-cgroup/--long-slice-cgroup, whose
 * tasks wait on purpose) and waits until SIGINT/SIGTERM or
 * until the kernel ends the scheduler (ops.exit records why). Exit status: 0 after a
 * normal unregistration, 1 when loading or attaching failed or the scheduler died with an
 * error, 2 on a usage error. On a load failure libbpf's verifier log goes to stderr between
 * the lines `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/libbpf.h>

/* the skeleton names .bss/.rodata types as the BPF side does */
typedef __u8 u8;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
#include "scx_ktstr.skel.h"

#define LOG_BEGIN "-- BEGIN PROG LOAD LOG --"
#define LOG_END "-- END PROG LOAD LOG --"
#define EXIT_KIND_ERROR 1024 /* SCX_EXIT_ERROR: kinds at or above it are errors */

static volatile sig_atomic_t stop_requested;
static int verbose;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: scx_ktstr [options]\n"
		"  --fail-verify      plant a null-pointer store the verifier rejects (load fails)\n"
		"  --verify-loop      the same, after an unrolled 8-iteration loop\n"
		"  --stall            never dispatch: the sched_ext watchdog ends the scheduler\n"
		"  --degrade          no idle-CPU wake-ups, 100 ms slices\n"
		"  --slow             spin about 50 us in every dispatch\n"
		"  --crash-after SECS scx_bpf_error() SECS seconds after attaching\n"
		"  --panic-after SECS crash the kernel (sysrq c) SECS seconds after attaching\n"
		"  --ignore-weights   plain FIFO: cgroup cpu.weight and nice are ignored, every task\n"
		"                     gets the same share (a weighted-share check fails)\n"
		"  --starve-cgroup NAME\n"
		"                     tasks of the cgroup named NAME (its last path component) run\n"
		"                     only when nothing else is runnable, and once every 20 s so the\n"
		"                     watchdog (30 s) does not fire (a starvation check fails)\n"
		"  --long-slice-cgroup NAME\n"
		"                     tasks of the cgroup named NAME get 5 s slices and are not\n"
		"                     preempted: with more runnable tasks than CPUs the others wait\n"
		"                     seconds (a scheduling-gap check fails); watchdog 30 s\n"
		"  -v, --verbose      print libbpf's debug messages\n"
		"  -h, --help         this help\n");
}

/* libbpf's messages: the verifier log of a failed load is re-printed with the markers on
 * lines of their own; everything else passes through (debug messages only with -v). */
static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char *text = NULL, *begin, *end;
	va_list copy;
	int n;

	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	va_copy(copy, args);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0 || !(text = malloc((size_t)n + 1)))
		return vfprintf(stderr, fmt, args);
	vsnprintf(text, (size_t)n + 1, fmt, args);
	begin = strstr(text, LOG_BEGIN);
	end = begin ? strstr(begin, LOG_END) : NULL;
	if (begin && end) {
		size_t head = (size_t)(begin - text);
		const char *log = begin + strlen(LOG_BEGIN);
		size_t len;

		while (head > 0 && (text[head - 1] == ' ' || text[head - 1] == ':'))
			head--;
		if (*log == '\n')
			log++;
		len = (size_t)(end - log);
		fprintf(stderr, "%.*s: verifier log:\n%s\n%.*s%s%s\n", (int)head, text, LOG_BEGIN,
			(int)len, log, (len > 0 && log[len - 1] != '\n') ? "\n" : "", LOG_END);
	} else {
		fputs(text, stderr);
	}
	free(text);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR && !stop_requested)
		;
}

/* The number of distinct last-level caches (cache/index3/id over the CPUs); 1 when sysfs
 * does not say (no L3 described, or no sysfs). */
static unsigned int count_llcs(void)
{
	int ids[64];
	unsigned int n = 0;

	for (int cpu = 0; cpu < 4096; cpu++) {
		char path[96];
		FILE *f;
		int id, known = 0;

		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/cache/index3/id", cpu);
		f = fopen(path, "r");
		if (!f) {
			if (access(path, F_OK) != 0 && cpu > 0) {
				snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d", cpu);
				if (access(path, F_OK) != 0)
					break; /* no such CPU: done */
			}
			continue;
		}
		if (fscanf(f, "%d", &id) == 1) {
			for (unsigned int i = 0; i < n; i++)
				if (ids[i] == id)
					known = 1;
			if (!known && n < 64)
				ids[n++] = id;
		}
		fclose(f);
	}
	return n == 0 ? 1 : n;
}

/* Whole seconds from 1 to 86400 for the option `name`; non-zero (with a message) otherwise. */
static int parse_seconds(const char *text, const char *name, unsigned long long *out)
{
	char *rest;

	errno = 0;
	*out = strtoull(text, &rest, 10);
	if (errno || *rest || rest == text || *out == 0 || *out > 86400) {
		fprintf(stderr, "scx_ktstr: %s takes whole seconds from 1 to 86400\n", name);
		return -1;
	}
	return 0;
}

/* A cgroup name for --starve-cgroup/--long-slice-cgroup: 1 to CGROUP_NAME_MAX bytes, no '/'
 * (a directory's name, not a path); non-zero (with a message) otherwise. */
#define CGROUP_NAME_MAX 63 /* the BPF side's CGROUP_NAME_LEN - 1 */
static int check_cgroup_name(const char *text, const char *name)
{
	size_t len = strlen(text);

	if (len == 0 || len > CGROUP_NAME_MAX || strchr(text, '/') || !strcmp(text, ".") || !strcmp(text, "..")) {
		fprintf(stderr, "scx_ktstr: %s takes a cgroup's name (1 to %d bytes, no '/'), not '%s'\n", name,
			CGROUP_NAME_MAX, text);
		return -1;
	}
	return 0;
}

/* --panic-after: the guest kernel crashes on purpose (sysrq c), to test a harness's panic path. */
static void panic_kernel(void)
{
	FILE *f = fopen("/proc/sysrq-trigger", "w");

	fprintf(stderr, "scx_ktstr: --panic-after reached: crashing the kernel (sysrq c)\n");
	if (!f) {
		fprintf(stderr, "scx_ktstr: /proc/sysrq-trigger: %s\n", strerror(errno));
		return;
	}
	fputc('c', f);
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "fail-verify", no_argument, NULL, 'F' },
		{ "verify-loop", no_argument, NULL, 'L' },
		{ "stall", no_argument, NULL, 'S' },
		{ "degrade", no_argument, NULL, 'D' },
		{ "slow", no_argument, NULL, 'W' },
		{ "crash-after", required_argument, NULL, 'C' },
		{ "panic-after", required_argument, NULL, 'P' },
		{ "ignore-weights", no_argument, NULL, 'I' },
		{ "starve-cgroup", required_argument, NULL, 'T' },
		{ "long-slice-cgroup", required_argument, NULL, 'G' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool fail_verify = false, verify_loop = false, stall = false, degrade = false, slow = false;
	bool ignore_weights = false;
	const char *starve_cgroup = NULL, *long_slice_cgroup = NULL;
	unsigned long long crash_after = 0, panic_after = 0;
	long waited_ms = 0;
	struct scx_ktstr *skel;
	struct bpf_map *ops, *unused_ops;
	struct bpf_link *link;
	int opt, err, status;

	while ((opt = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
		switch (opt) {
		case 'F': fail_verify = true; break;
		case 'L': fail_verify = verify_loop = true; break;
		case 'S': stall = true; break;
		case 'D': degrade = true; break;
		case 'W': slow = true; break;
		case 'C':
			if (parse_seconds(optarg, "--crash-after", &crash_after))
				return 2;
			break;
		case 'P':
			if (parse_seconds(optarg, "--panic-after", &panic_after))
				return 2;
			break;
		case 'I': ignore_weights = true; break;
		case 'T':
			if (check_cgroup_name(optarg, "--starve-cgroup"))
				return 2;
			starve_cgroup = optarg;
			break;
		case 'G':
			if (check_cgroup_name(optarg, "--long-slice-cgroup"))
				return 2;
			long_slice_cgroup = optarg;
			break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "scx_ktstr: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (starve_cgroup && long_slice_cgroup && !strcmp(starve_cgroup, long_slice_cgroup)) {
		fprintf(stderr, "scx_ktstr: --starve-cgroup and --long-slice-cgroup name the same cgroup\n");
		return 2;
	}
	libbpf_set_print(print_libbpf);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	skel = scx_ktstr__open();
	if (!skel) {
		fprintf(stderr, "scx_ktstr: opening the BPF object failed: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->fail_verify = fail_verify;
	skel->rodata->verify_loop = verify_loop;
	skel->rodata->stall = stall;
	skel->rodata->degrade = degrade;
	skel->rodata->slow = slow;
	skel->rodata->crash_after_ns = crash_after * 1000000000ULL;
	skel->rodata->ignore_weights = ignore_weights;
	if (starve_cgroup)
		snprintf(skel->rodata->starve_cgroup, sizeof(skel->rodata->starve_cgroup), "%s", starve_cgroup);
	if (long_slice_cgroup)
		snprintf(skel->rodata->long_slice_cgroup, sizeof(skel->rodata->long_slice_cgroup), "%s",
			 long_slice_cgroup);
	skel->rodata->nr_llcs = count_llcs();
	/* the knobs whose tasks wait on purpose get the patient watchdog; the other table is
	 * not created (its programs are the same ones) */
	if (starve_cgroup || long_slice_cgroup) {
		ops = skel->maps.ktstr_patient_ops;
		unused_ops = skel->maps.ktstr_ops;
	} else {
		ops = skel->maps.ktstr_ops;
		unused_ops = skel->maps.ktstr_patient_ops;
	}
	bpf_map__set_autocreate(unused_ops, false);
	/* ops.init creates the DSQ, which only a sleepable program may do; libbpf 1.1 has no
	 * "struct_ops.s/" section name, so the flag is set here */
	bpf_program__set_flags(skel->progs.ktstr_init,
			       bpf_program__flags(skel->progs.ktstr_init) | BPF_F_SLEEPABLE);

	err = scx_ktstr__load(skel);
	if (err) {
		fprintf(stderr, "scx_ktstr: loading the BPF programs failed: %s\n", strerror(-err));
		scx_ktstr__destroy(skel);
		return 1;
	}
	link = bpf_map__attach_struct_ops(ops);
	if (!link) {
		fprintf(stderr, "scx_ktstr: attaching sched_ext_ops failed: %s\n", strerror(errno));
		scx_ktstr__destroy(skel);
		return 1;
	}
	printf("scx_ktstr: attached%s%s%s%s%s%s%s%s%s%s (%u LLCs)\n", stall ? " --stall" : "", degrade ? " --degrade" : "",
	       slow ? " --slow" : "", crash_after ? " --crash-after" : "", panic_after ? " --panic-after" : "",
	       ignore_weights ? " --ignore-weights" : "", starve_cgroup ? " --starve-cgroup " : "",
	       starve_cgroup ? starve_cgroup : "", long_slice_cgroup ? " --long-slice-cgroup " : "",
	       long_slice_cgroup ? long_slice_cgroup : "", skel->rodata->nr_llcs);
	fflush(stdout);

	while (!stop_requested && skel->bss->exit_kind == 0) {
		sleep_ms(100);
		waited_ms += 100;
		if (panic_after && waited_ms >= (long)panic_after * 1000) {
			panic_kernel();
			panic_after = 0; /* one try: a kernel that survives it keeps the scheduler */
		}
	}

	bpf_link__destroy(link);
	/* destroying the link unregisters the ops; ops.exit has run by then */
	status = skel->bss->exit_kind >= EXIT_KIND_ERROR ? 1 : 0;
	printf("scx_ktstr: enqueued=%llu direct=%llu dispatched=%llu",
	       (unsigned long long)skel->bss->nr_enqueued, (unsigned long long)skel->bss->nr_direct,
	       (unsigned long long)skel->bss->nr_dispatched);
	if (starve_cgroup)
		printf(" starved_dispatched=%llu starve_releases=%llu",
		       (unsigned long long)skel->bss->nr_starved_dispatched,
		       (unsigned long long)skel->bss->nr_starve_releases);
	printf("\n");
	printf("EXIT: %s%s%s (kind %d)\n", skel->bss->exit_reason[0] ? skel->bss->exit_reason : "unknown",
	       skel->bss->exit_msg[0] ? ": " : "", skel->bss->exit_msg, skel->bss->exit_kind);
	scx_ktstr__destroy(skel);
	return status;
}
