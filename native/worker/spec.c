/* ktstr-worker: the spec file — `dir PATH` and one `worker key=value ...` line per worker.
 * Everything is checked here, before anything is forked: unknown directives, kinds and keys,
 * keys that do not apply to the kind, malformed numbers and CPU lists, duplicate indexes,
 * pingpong pairs that are not pairs, futex groups without exactly one waker. */

#include "kw.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const work_names[W_NKINDS] = {
	"spin", "yield", "sleepy", "burst", "pingpong", "forkexec", "futex", "mixed",
};

static const char *spec_path;

static int fail(int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ktstr-worker: %s:%d: ", spec_path, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Decimal integer in [lo, hi], nothing else (a leading '-' only when lo < 0). */
static bool parse_int(const char *v, long long lo, long long hi, long long *out)
{
	const char *p = v;
	if (*p == '-') {
		if (lo >= 0)
			return false;
		p++;
	}
	if (*p < '0' || *p > '9' || strlen(p) > 12)
		return false;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	long long x = strtoll(v, NULL, 10);
	if (x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

/* `0-3,6`: CPU numbers below CPU_SETSIZE, ranges ascending, nothing empty. */
static bool parse_cpus(const char *v, cpu_set_t *set)
{
	CPU_ZERO(set);
	char buf[1024];
	if (strlen(v) >= sizeof buf || *v == '\0')
		return false;
	strcpy(buf, v);
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		long long a, b;
		char *dash = strchr(item, '-');
		if (dash) {
			*dash = '\0';
			if (!parse_int(item, 0, CPU_SETSIZE - 1, &a) || !parse_int(dash + 1, 0, CPU_SETSIZE - 1, &b) || b < a)
				return false;
		} else {
			if (!parse_int(item, 0, CPU_SETSIZE - 1, &a))
				return false;
			b = a;
		}
		for (long long c = a; c <= b; c++)
			CPU_SET((int)c, set);
	}
	/* strtok_r skips empty items: refuse `0,,1`, `,0`, `0,` */
	return strstr(v, ",,") == NULL && v[0] != ',' && v[strlen(v) - 1] != ',';
}

/* Which keys each kind takes besides the common ones (index cgroup work affinity nice policy). */
static bool key_applies(enum work_kind k, const char *key)
{
	switch (k) {
	case W_SLEEPY: return !strcmp(key, "run_us") || !strcmp(key, "sleep_us");
	case W_BURST: return !strcmp(key, "burst_ms") || !strcmp(key, "idle_ms");
	case W_PINGPONG: return !strcmp(key, "pair");
	case W_FUTEX: return !strcmp(key, "fanout") || !strcmp(key, "role");
	default: return false;
	}
}

static const char *const all_keys[] = {
	"index", "cgroup", "work", "affinity", "nice", "policy",
	"run_us", "sleep_us", "burst_ms", "idle_ms", "pair", "fanout", "role", NULL,
};

static int parse_worker(char *rest, int line, struct worker_spec *w)
{
	char *tok[32];
	int ntok = 0;
	char *save = NULL;
	for (char *t = strtok_r(rest, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (ntok == 32)
			return fail(line, "too many keys");
		tok[ntok++] = t;
	}
	memset(w, 0, sizeof *w);
	w->line = line;
	w->cgroup = "-";
	w->rfd = w->wfd = -1;
	w->group = -1;
	bool seen[sizeof all_keys / sizeof all_keys[0]] = { false };
	const char *work = NULL;
	/* the kind first, so that keys can be checked against it */
	for (int i = 0; i < ntok; i++)
		if (!strncmp(tok[i], "work=", 5))
			work = tok[i] + 5;
	if (!work)
		return fail(line, "worker without work=");
	int kind = -1;
	for (int k = 0; k < W_NKINDS; k++)
		if (!strcmp(work, work_names[k]))
			kind = k;
	if (kind < 0)
		return fail(line, "unknown work kind '%s' (spin, yield, sleepy, burst, pingpong, forkexec, futex, mixed)", work);
	w->work = (enum work_kind)kind;
	switch (w->work) {
	case W_SLEEPY: w->run_ns = 500000; w->sleep_ns = 1500000; break;
	case W_BURST: w->run_ns = 50000000; w->sleep_ns = 100000000; break;
	default: break;
	}

	for (int i = 0; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');
		if (!eq || eq == tok[i])
			return fail(line, "expected key=value, got '%s'", tok[i]);
		*eq = '\0';
		const char *key = tok[i], *v = eq + 1;
		int ki = -1;
		for (int k = 0; all_keys[k]; k++)
			if (!strcmp(key, all_keys[k]))
				ki = k;
		if (ki < 0)
			return fail(line, "unknown key '%s'", key);
		if (seen[ki])
			return fail(line, "key '%s' given twice", key);
		seen[ki] = true;
		if (ki >= 6 && !key_applies(w->work, key))
			return fail(line, "key '%s' does not apply to work=%s", key, work_names[w->work]);
		long long x;
		if (!strcmp(key, "index")) {
			if (!parse_int(v, 0, INT32_MAX, &x))
				return fail(line, "index='%s': expected an integer 0..%d", v, INT32_MAX);
			w->index = (unsigned)x;
		} else if (!strcmp(key, "cgroup")) {
			if (strcmp(v, "-") != 0 && (v[0] != '/' || strlen(v) > 3900))
				return fail(line, "cgroup='%s': expected '-' or an absolute path", v);
			w->cgroup = strcmp(v, "-") ? (char *)v : "-";
		} else if (!strcmp(key, "work")) {
			/* done above */
		} else if (!strcmp(key, "affinity")) {
			if (!parse_cpus(v, &w->affinity))
				return fail(line, "affinity='%s': expected a CPU list such as 0-3,6 (CPUs below %d)", v, CPU_SETSIZE);
			w->has_affinity = true;
		} else if (!strcmp(key, "nice")) {
			if (!parse_int(v, -20, 19, &x))
				return fail(line, "nice='%s': expected an integer -20..19", v);
			w->has_nice = true;
			w->nice = (int)x;
		} else if (!strcmp(key, "policy")) {
			if (!strcmp(v, "normal")) w->policy = 0;
			else if (!strcmp(v, "batch")) w->policy = 3;
			else if (!strcmp(v, "idle")) w->policy = 5;
			else if (!strcmp(v, "ext")) w->policy = 7;
			else return fail(line, "policy='%s': expected ext, normal, batch or idle", v);
		} else if (!strcmp(key, "run_us") || !strcmp(key, "sleep_us")) {
			if (!parse_int(v, 0, 60000000, &x))
				return fail(line, "%s='%s': expected microseconds 0..60000000", key, v);
			*(key[0] == 'r' ? &w->run_ns : &w->sleep_ns) = (uint64_t)x * 1000;
		} else if (!strcmp(key, "burst_ms") || !strcmp(key, "idle_ms")) {
			if (!parse_int(v, 0, 60000, &x))
				return fail(line, "%s='%s': expected milliseconds 0..60000", key, v);
			*(key[0] == 'b' ? &w->run_ns : &w->sleep_ns) = (uint64_t)x * 1000000;
		} else if (!strcmp(key, "pair") || !strcmp(key, "fanout")) {
			if (!parse_int(v, 0, INT32_MAX, &x))
				return fail(line, "%s='%s': expected an integer 0..%d", key, v, INT32_MAX);
			*(key[0] == 'p' ? &w->pair : &w->fanout) = (long)x;
		} else if (!strcmp(key, "role")) {
			if (strcmp(v, "waker") && strcmp(v, "waiter"))
				return fail(line, "role='%s': expected waker or waiter", v);
			w->waker = !strcmp(v, "waker");
		}
	}
	if (!seen[0])
		return fail(line, "worker without index=");
	if (w->work == W_PINGPONG && !seen[10])
		return fail(line, "work=pingpong needs pair=");
	if (w->work == W_FUTEX && (!seen[11] || !seen[12]))
		return fail(line, "work=futex needs fanout= and role=");
	return 0;
}

/* Pairs of two, futex groups with one waker and at least one waiter; slots assigned. */
static int resolve_groups(struct spec *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct worker_spec *w = &s->w[i];
		for (unsigned j = 0; j < i; j++)
			if (s->w[j].index == w->index)
				return fail(w->line, "index %u already used on line %d", w->index, s->w[j].line);
		if (w->work == W_PINGPONG && w->rfd == -1) {
			int peers = 0, peer = -1;
			for (unsigned j = 0; j < s->n; j++)
				if (j != i && s->w[j].work == W_PINGPONG && s->w[j].pair == w->pair) {
					peers++;
					peer = (int)j;
				}
			if (peers != 1)
				return fail(w->line, "pingpong pair=%ld needs exactly two workers, has %d", w->pair, peers + 1);
			bool first = w->index < s->w[peer].index;
			w->initiator = first;
			s->w[peer].initiator = !first;
			w->rfd = -2; /* marks the pair resolved; the launcher makes the pipes */
			s->w[peer].rfd = -2;
		}
		if (w->work == W_FUTEX && w->group < 0) {
			if (s->ngroups == MAX_FUTEX_GROUPS)
				return fail(w->line, "more than %d futex groups", MAX_FUTEX_GROUPS);
			int wakers = 0, waiters = 0;
			for (unsigned j = i; j < s->n; j++)
				if (s->w[j].work == W_FUTEX && s->w[j].fanout == w->fanout) {
					s->w[j].group = s->ngroups;
					s->w[j].waker ? wakers++ : waiters++;
				}
			if (wakers != 1 || waiters < 1)
				return fail(w->line, "futex fanout=%ld needs one waker and at least one waiter (has %d and %d)",
					    w->fanout, wakers, waiters);
			s->ngroups++;
		}
	}
	return 0;
}

int spec_load(const char *path, struct spec *s)
{
	spec_path = path;
	memset(s, 0, sizeof *s);
	s->path = path;
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "ktstr-worker: %s: %s\n", path, strerror(errno));
		return -1;
	}
	s->w = calloc(MAX_WORKERS, sizeof *s->w);
	if (!s->w) {
		fclose(f);
		fprintf(stderr, "ktstr-worker: out of memory\n");
		return -1;
	}
	char buf[8192];
	int line = 0, rc = 0;
	while (rc == 0 && fgets(buf, sizeof buf, f)) {
		line++;
		size_t len = strlen(buf);
		if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
			rc = fail(line, "line longer than %zu bytes", sizeof buf - 2);
			break;
		}
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *p = buf + strspn(buf, " \t\r\n");
		char *end = p + strlen(p);
		while (end > p && strchr(" \t\r\n", end[-1]))
			*--end = '\0';
		if (*p == '\0')
			continue;
		char *rest = p + strcspn(p, " \t");
		if (*rest)
			*rest++ = '\0';
		rest += strspn(rest, " \t");
		if (!strcmp(p, "dir")) {
			if (s->dir)
				rc = fail(line, "dir given twice");
			else if (*rest == '\0' || strpbrk(rest, " \t"))
				rc = fail(line, "dir needs one path (no spaces)");
			else
				s->dir = strdup(rest);
		} else if (!strcmp(p, "worker")) {
			if (s->n == MAX_WORKERS)
				rc = fail(line, "more than %d workers", MAX_WORKERS);
			else if ((rc = parse_worker(rest, line, &s->w[s->n])) == 0) {
				/* parse_worker points into buf: keep its own copy of the cgroup path */
				if (strcmp(s->w[s->n].cgroup, "-"))
					s->w[s->n].cgroup = strdup(s->w[s->n].cgroup);
				s->n++;
			}
		} else {
			rc = fail(line, "unknown directive '%s' (dir, worker)", p);
		}
	}
	fclose(f);
	if (rc == 0 && !s->dir)
		rc = fail(line, "no dir line");
	if (rc == 0 && s->n == 0)
		rc = fail(line, "no worker lines");
	if (rc == 0)
		rc = resolve_groups(s);
	return rc;
}
