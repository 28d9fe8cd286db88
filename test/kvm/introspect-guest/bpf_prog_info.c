/*
 * Guest-side reference for the introspection test: lists the loaded struct_ops BPF programs
 * as the kernel itself reports them through the bpf() syscall (BPF_PROG_GET_NEXT_ID,
 * BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD), one line each:
 *   PROG id=<id> name=<name> verified_insns=<n> run_cnt=<n> run_time_ns=<n> recursion_misses=<n>
 *   MAPS id=<id> names=<map name>,<map name>,...   (the program's used maps, by name)
 * The host reads the same programs from guest memory and compares. Built at test time with
 * `gcc -static` (Debian bpftool does not print verified_insns).
 */
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

#define MAX_MAPS 64

/* Prints the names of the maps the program at `fd` uses. */
static void print_maps(int fd, __u32 prog_id)
{
	__u32 ids[MAX_MAPS];
	struct bpf_prog_info info;
	union bpf_attr attr;

	memset(&info, 0, sizeof(info));
	info.nr_map_ids = MAX_MAPS;
	info.map_ids = (__u64)(unsigned long)ids;
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (__u64)(unsigned long)&info;
	if (bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) != 0) {
		perror("BPF_OBJ_GET_INFO_BY_FD (map ids)");
		return;
	}
	printf("MAPS id=%u names=", prog_id);
	for (__u32 i = 0; i < info.nr_map_ids && i < MAX_MAPS; i++) {
		struct bpf_map_info map;
		int map_fd;

		memset(&attr, 0, sizeof(attr));
		attr.map_id = ids[i];
		map_fd = (int)bpf(BPF_MAP_GET_FD_BY_ID, &attr);
		if (map_fd < 0)
			continue;
		memset(&map, 0, sizeof(map));
		memset(&attr, 0, sizeof(attr));
		attr.info.bpf_fd = map_fd;
		attr.info.info_len = sizeof(map);
		attr.info.info = (__u64)(unsigned long)&map;
		if (bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) == 0)
			printf("%s%.16s", i > 0 ? "," : "", map.name);
		close(map_fd);
	}
	printf("\n");
}

int main(void)
{
	__u32 id = 0;
	int listed = 0;

	for (int guard = 0; guard < 65536; guard++) {
		union bpf_attr attr;
		struct bpf_prog_info info;
		int fd;

		memset(&attr, 0, sizeof(attr));
		attr.start_id = id;
		if (bpf(BPF_PROG_GET_NEXT_ID, &attr) != 0)
			break;
		id = attr.next_id;

		memset(&attr, 0, sizeof(attr));
		attr.prog_id = id;
		fd = (int)bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0) {
			perror("BPF_PROG_GET_FD_BY_ID");
			continue;
		}
		memset(&info, 0, sizeof(info));
		memset(&attr, 0, sizeof(attr));
		attr.info.bpf_fd = fd;
		attr.info.info_len = sizeof(info);
		attr.info.info = (__u64)(unsigned long)&info;
		if (bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) != 0) {
			perror("BPF_OBJ_GET_INFO_BY_FD");
			close(fd);
			continue;
		}
		if (info.type != BPF_PROG_TYPE_STRUCT_OPS) {
			close(fd);
			continue;
		}
		printf("PROG id=%u name=%.16s verified_insns=%u run_cnt=%llu run_time_ns=%llu recursion_misses=%llu\n",
		       info.id, info.name, info.verified_insns,
		       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns,
		       (unsigned long long)info.recursion_misses);
		print_maps(fd, info.id);
		close(fd);
		listed++;
	}
	printf("PROGS_LISTED=%d\n", listed);
	return 0;
}
