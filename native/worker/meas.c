/* ktstr-worker: what a worker measures of itself, and its JSON report. Every unit of work
 * ends in meas_mark(): phase, clock, CPU, phase again — a sample raced by a phase change is
 * dropped — then time on that CPU (capped at 1 ms: longer was off CPU), migrations, the
 * longest runnable gap, and wakeup latencies (a reservoir of LAT_CAP, so memory is fixed). */

#include "kw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int meas_init(struct meas *m, const uint32_t *phase_word, int ncpu, bool latency)
{
	memset(m, 0, sizeof *m);
	m->phase_word = phase_word;
	m->ncpu = ncpu < 1 ? 1 : ncpu;
	m->prev_cpu = -1;
	m->max_gap_cpu = -1;
	m->cur = -1;
	m->latency = latency;
	m->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	/* One fresh mapping for every array: pages are touched only as they are used, and none
	 * is a copy-on-write page shared with the launcher (faults cost most of a launch). */
	size_t per_cpu = (size_t)m->ncpu * sizeof(uint64_t);
	size_t len = per_cpu * (1 + MAX_PHASES) + (latency ? LAT_CAP * sizeof(uint64_t) : 0);
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	m->cpu_ns = (uint64_t *)mem;
	for (int i = 0; i < MAX_PHASES; i++)
		m->phases[i].cpu_ns = (uint64_t *)(mem + per_cpu * (size_t)(1 + i));
	if (latency)
		m->lat = (uint64_t *)(mem + per_cpu * (1 + MAX_PHASES));
	return 0;
}

/* The worker starts running: the first sample's time counts from here. */
void meas_begin(struct meas *m, uint64_t start_ns)
{
	m->start_ns = start_ns;
	m->prev_end = mono_ns();
	m->prev_cpu = sched_getcpu();
}

static struct phase_use *phase_slot(struct meas *m, uint32_t phase)
{
	if (m->cur >= 0 && m->phases[m->cur].phase == phase)
		return &m->phases[m->cur];
	for (int i = 0; i < m->nphases; i++)
		if (m->phases[i].phase == phase) {
			m->cur = i;
			return &m->phases[i];
		}
	if (m->nphases == MAX_PHASES)
		return NULL; /* counted in the totals only */
	struct phase_use *p = &m->phases[m->nphases];
	p->phase = phase;
	p->iterations = 0;
	m->cur = m->nphases++;
	return p;
}

static uint64_t next_rand(struct meas *m)
{
	uint64_t x = m->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return m->rng = x;
}

static void add_latency(struct meas *m, uint64_t lat)
{
	m->wakeups++;
	if (lat > m->lat_max)
		m->lat_max = lat;
	if (m->lat_kept < LAT_CAP) {
		m->lat[m->lat_kept++] = lat;
	} else {
		uint64_t j = next_rand(m) % m->wakeups; /* algorithm R: each sample kept with LAT_CAP/n */
		if (j < LAT_CAP)
			m->lat[j] = lat;
	}
}

/*
 * One sample, after a unit of work. block_start (0: none): when an intended sleep or block
 * began, so that only the runnable part before it counts as time on the CPU. lat_ref (0:
 * none): the moment the wakeup was due (a sleep's target, the waker's stamp); now - lat_ref
 * is a wakeup latency. iteration: the sample ends a unit of work (false: a time sample
 * inside a longer run). Returns false once the phase word says stop.
 */
bool meas_mark(struct meas *m, uint64_t block_start, uint64_t lat_ref, bool iteration)
{
	uint32_t p1 = load32(m->phase_word);
	uint64_t now = mono_ns();
	int cpu = sched_getcpu();
	uint32_t p2 = load32(m->phase_word);
	uint64_t prev_end = m->prev_end;
	int prev_cpu = m->prev_cpu;
	m->prev_end = now;
	m->prev_cpu = cpu;
	if (p2 == PHASE_STOP && p1 != 0 && prev_end != 0) {
		/*
		 * The first sample after stop: a worker kept off the CPU until now (runnable, never
		 * picked) shows its gap here, or never. Nothing else is attributed.
		 */
		uint64_t run_end = block_start ? block_start : now;
		uint64_t gap = run_end > prev_end ? run_end - prev_end : 0;
		if (gap > m->max_gap) {
			m->max_gap = gap;
			m->max_gap_at = now > m->start_ns ? now - m->start_ns : 0;
			m->max_gap_cpu = cpu;
		}
		return false;
	}
	if (p1 != p2 || p1 == 0 || p1 == PHASE_STOP)
		return p2 != PHASE_STOP; /* a phase change raced the sample: nothing attributed */
	/* in transition (an operation being applied): iterations count, CPUs do not */
	bool transition = (p1 & PHASE_TRANSITION) != 0;
	p1 &= ~PHASE_TRANSITION;

	uint64_t run_end = block_start ? block_start : now;
	uint64_t dt = run_end > prev_end ? run_end - prev_end : 0;
	uint64_t on = dt < ON_CPU_CAP_NS ? dt : ON_CPU_CAP_NS;
	struct phase_use *ph = phase_slot(m, p1);
	if (!transition && cpu >= 0 && cpu < m->ncpu) {
		m->cpu_ns[cpu] += on;
		if (ph)
			ph->cpu_ns[cpu] += on;
	}
	if (iteration) {
		m->iterations++;
		if (ph)
			ph->iterations++;
	}
	if (prev_cpu >= 0 && cpu != prev_cpu)
		m->migrations++;
	uint64_t gap = dt;
	if (lat_ref && m->latency && now >= lat_ref) {
		uint64_t lat = now - lat_ref;
		add_latency(m, lat);
		if (lat > gap)
			gap = lat;
	}
	if (gap > m->max_gap) {
		m->max_gap = gap;
		m->max_gap_at = now > m->start_ns ? now - m->start_ns : 0;
		m->max_gap_cpu = cpu;
	}
	return true;
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_phase(const void *a, const void *b)
{
	uint32_t x = ((const struct phase_use *)a)->phase, y = ((const struct phase_use *)b)->phase;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
static uint64_t rank(const uint64_t *sorted, uint64_t n, unsigned p)
{
	uint64_t r = (n * p + 99) / 100;
	return sorted[r ? r - 1 : 0];
}

static void put_cpus(FILE *f, const uint64_t *ns, int ncpu)
{
	bool first = true;
	fputc('[', f);
	for (int c = 0; c < ncpu; c++)
		if (ns[c]) {
			fprintf(f, "%s{\"cpu\":%d,\"ns\":%llu}", first ? "" : ",", c, (unsigned long long)ns[c]);
			first = false;
		}
	fputc(']', f);
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* <dir>/<index>.json, written to a temporary name and renamed into place. */
int report_write(const char *dir, const struct report_head *h, struct meas *m)
{
	char tmp[4200], path[4200];
	snprintf(tmp, sizeof tmp, "%s/.%u.json.tmp", dir, h->index);
	snprintf(path, sizeof path, "%s/%u.json", dir, h->index);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "{\"index\":%u,\"pid\":%d,\"work\":\"%s\",\"policy\":%d,\"nice\":%d,\"iterations\":%llu,"
		   "\"cpuTimeNs\":%llu,\"wallNs\":%llu,\"voluntarySwitches\":%ld,\"involuntarySwitches\":%ld,"
		   "\"migrations\":%llu,\"cpus\":",
		h->index, h->pid, h->work, h->policy, h->nice, (unsigned long long)m->iterations,
		(unsigned long long)h->cpu_time_ns, (unsigned long long)h->wall_ns, h->vol, h->invol,
		(unsigned long long)m->migrations);
	put_cpus(f, m->cpu_ns, m->ncpu);
	fputs(",\"phases\":[", f);
	qsort(m->phases, (size_t)m->nphases, sizeof m->phases[0], cmp_phase);
	for (int i = 0; i < m->nphases; i++) {
		fprintf(f, "%s{\"phase\":%u,\"iterations\":%llu,\"cpus\":", i ? "," : "", m->phases[i].phase,
			(unsigned long long)m->phases[i].iterations);
		put_cpus(f, m->phases[i].cpu_ns, m->ncpu);
		fputc('}', f);
	}
	fprintf(f, "],\"maxGapNs\":%llu,\"maxGapAtNs\":%llu,\"maxGapCpu\":%d,\"wakeups\":%llu,\"wakeLatencyNs\":",
		(unsigned long long)m->max_gap, (unsigned long long)m->max_gap_at, m->max_gap_cpu,
		(unsigned long long)m->wakeups);
	if (!m->latency) {
		fputs("null", f);
	} else if (m->lat_kept == 0) {
		fputs("{\"samples\":0,\"p50\":0,\"p99\":0,\"max\":0}", f);
	} else {
		qsort(m->lat, (size_t)m->lat_kept, sizeof *m->lat, cmp_u64);
		fprintf(f, "{\"samples\":%llu,\"p50\":%llu,\"p99\":%llu,\"max\":%llu}", (unsigned long long)m->lat_kept,
			(unsigned long long)rank(m->lat, m->lat_kept, 50), (unsigned long long)rank(m->lat, m->lat_kept, 99),
			(unsigned long long)m->lat_max);
	}
	fputs(",\"error\":", f);
	if (h->error)
		put_string(f, h->error);
	else
		fputs("null", f);
	fputs("}\n", f);
	int bad = ferror(f);
	if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}
