#!/usr/bin/env bash
# Regenerate the real BPF verifier log fixtures under test/fixtures/logs/
# from the BPF C sources under test/fixtures/bpf/.
#
# Needs root (loads programs into the running kernel), clang-16, llvm-objdump-16,
# bpftool, gcc and libbpf-dev, and bpffs mounted at /sys/fs/bpf.
#
#   sudo scripts/make-verifier-logs.sh
#
# Log levels:
#   <name>.log         `bpftool -d prog load`: libbpf loads with log_level
#                      1|2|4 (= 7: full state trace + mark_precise + stats) and
#                      prints the log between "-- BEGIN PROG LOAD LOG --" and
#                      "-- END PROG LOAD LOG --" (also on success); we keep
#                      exactly the text between the markers.
#   <name>_level1.log  test/fixtures/bpf/load_with_log (libbpf, log_level=1,
#                      64 MiB buffer, writes the kernel's log verbatim).
#                      The kernel keeps a level-1 log only on failure; on
#                      success it is just the "processed ..." line.
# Logs larger than 1 MB are stored as <name>.log.gz (gzip -9n).
# The "verification time N usec" line differs between runs; everything else
# is deterministic for a given kernel + clang.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/test/fixtures/bpf"
OUT="$ROOT/test/fixtures/logs"
BPFFS=/sys/fs/bpf
PIN_PREFIX=ktstr_fixture_
MAX_PLAIN_BYTES=1000000

CLANG=${CLANG:-clang-16}
OBJDUMP=${OBJDUMP:-llvm-objdump-16}
BPFTOOL=${BPFTOOL:-bpftool}
CFLAGS=(-O2 -g -target bpf -I/usr/include/x86_64-linux-gnu)

# name | expected outcome (loaded/rejected) | loop shape check
#   unrolled8: exactly 8 helper calls and no backward jump
#   loop:      at least one backward jump (a real loop)
#   noloop:    no backward jump (bpf_loop: the helper does the looping)
#   any:       not checked (may_goto is emitted as bytes llvm-objdump-16 cannot decode)
FIXTURES=(
	"verify_loop          rejected unrolled8"
	"bounded_loop_40      loaded   loop"
	"bounded_loop_400     loaded   loop"
	"bounded_loop_40_fail rejected loop"
	"nested_loops         loaded   loop"
	"subprog_calls        loaded   loop"
	"no_loop              loaded   noloop"
	"branching_loop_40       loaded loop"
	"branching_loop_40_store loaded loop"
	"nested_branch_loops     loaded loop"
	"bpf_loop_callback       loaded noloop"
	"may_goto_loop           loaded any"
	"bpf_for_iter            loaded loop"
)
# name | expected outcome at log level 1
LEVEL1=(
	"verify_loop          rejected"
	"bounded_loop_40      loaded"
	"bounded_loop_40_fail rejected"
)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (loads BPF programs)"
for t in "$CLANG" "$OBJDUMP" "$BPFTOOL" gcc gzip awk; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done
mountpoint -q "$BPFFS" || die "bpffs not mounted at $BPFFS"

TMP="$(mktemp -d /tmp/make-verifier-logs.XXXXXX)"
PINNED=()
cleanup() {
	local p
	for p in "${PINNED[@]+"${PINNED[@]}"}"; do
		[[ -e $p ]] && rm -f -- "$p"
	done
	rm -rf -- "$TMP"
}
trap cleanup EXIT INT TERM

mkdir -p "$OUT"

log "building loader: gcc -O2 -Wall $SRC/load_with_log.c -lbpf"
gcc -O2 -Wall -o "$TMP/load_with_log" "$SRC/load_with_log.c" -lbpf

# Print the text strictly between libbpf's BEGIN/END markers, verbatim.
extract_log() {
	awk '
		!inlog && /-- BEGIN PROG LOAD LOG --$/ { inlog = 1; next }
		inlog && $0 == "-- END PROG LOAD LOG --" { exit }
		inlog && /-- END PROG LOAD LOG --$/ {
			# log did not end in a newline: marker glued to its last line
			printf "%s", substr($0, 1, length($0) - 23); exit
		}
		inlog { print }
	' "$1"
}

check_shape() {
	local name=$1 shape=$2 dis=$3 back calls
	back=$(grep -cE 'goto -0x' "$dis" || true)
	calls=$(grep -cE 'call 0x5$' "$dis" || true)
	case $shape in
	unrolled8)
		[[ $back -eq 0 && $calls -eq 8 ]] ||
			die "$name: expected 8x unrolled straight-line code (back-edges=$back calls=$calls)" ;;
	loop)
		[[ $back -ge 1 ]] || die "$name: expected a real loop (no backward jump found)" ;;
	noloop)
		[[ $back -eq 0 ]] || die "$name: expected no loop (found $back backward jumps)" ;;
	any) ;;
	esac
	log "$name: shape ok ($shape: back-edges=$back ktime calls=$calls)"
}

store_log() {	# store_log NAME FILE: plain or gzip'd depending on size
	local name=$1 file=$2 size
	size=$(stat -c %s "$file")
	rm -f -- "$OUT/$name.log" "$OUT/$name.log.gz"
	if ((size > MAX_PLAIN_BYTES)); then
		gzip -9n <"$file" >"$OUT/$name.log.gz"
		log "$name: $(wc -l <"$file") lines, $size bytes -> $OUT/$name.log.gz"
	else
		cp -- "$file" "$OUT/$name.log"
		log "$name: $(wc -l <"$file") lines, $size bytes -> $OUT/$name.log"
	fi
}

for entry in "${FIXTURES[@]}"; do
	read -r name expect shape <<<"$entry"
	obj="$TMP/$name.o"
	log "$name: $CLANG ${CFLAGS[*]} -c $name.c"
	"$CLANG" "${CFLAGS[@]}" -c "$SRC/$name.c" -o "$obj"
	"$OBJDUMP" -d "$obj" >"$TMP/$name.dis"
	check_shape "$name" "$shape" "$TMP/$name.dis"

	pin="$BPFFS/$PIN_PREFIX$name"
	rm -f -- "$pin"
	PINNED+=("$pin")
	log "$name: $BPFTOOL -d prog load $name.o $pin"
	if "$BPFTOOL" -d prog load "$obj" "$pin" 2>"$TMP/$name.stderr" >/dev/null; then
		got=loaded
		rm -f -- "$pin"
	else
		got=rejected
	fi
	[[ $got == "$expect" ]] || {
		tail -20 "$TMP/$name.stderr" >&2
		die "$name: expected $expect, got $got"
	}
	extract_log "$TMP/$name.stderr" >"$TMP/$name.log"
	[[ -s $TMP/$name.log ]] || die "$name: no verifier log found in bpftool output"
	log "$name: $got"
	store_log "$name" "$TMP/$name.log"
done

for entry in "${LEVEL1[@]}"; do
	read -r name expect <<<"$entry"
	log "${name}_level1: load_with_log $name.o 1"
	if "$TMP/load_with_log" "$TMP/$name.o" 1 >"$TMP/${name}_level1.log" 2>"$TMP/${name}_level1.stderr"; then
		got=loaded
	else
		rc=$?
		((rc == 1)) || { cat "$TMP/${name}_level1.stderr" >&2; die "${name}_level1: loader failed ($rc)"; }
		got=rejected
	fi
	[[ $got == "$expect" ]] || die "${name}_level1: expected $expect, got $got"
	log "${name}_level1: $got"
	store_log "${name}_level1" "$TMP/${name}_level1.log"
done

# ---- README ---------------------------------------------------------------
kernel=$(uname -r)
clangv=$("$CLANG" --version | head -1)
bpftoolv=$("$BPFTOOL" version | head -1)

read_log() {	# read_log NAME -> log text on stdout
	if [[ -f $OUT/$1.log.gz ]]; then gzip -dc "$OUT/$1.log.gz"; else cat "$OUT/$1.log"; fi
}
readme_line() {	# readme_line LOGNAME SOURCE LEVEL OUTCOME DESCRIPTION
	local lname=$1 srcname=$2 level=$3 outcome=$4 desc=$5 file lines reason
	if [[ -f $OUT/$lname.log.gz ]]; then file="$lname.log.gz"; else file="$lname.log"; fi
	lines=$(read_log "$lname" | wc -l)
	if [[ $outcome == rejected ]]; then
		# the line just before the trailing stats ("verification time"/"processed")
		reason=$(read_log "$lname" | awk '/^(verification time|processed) /{print prev; exit} {prev=$0}')
	else
		reason=$(read_log "$lname" | grep -m1 '^processed ')
	fi
	printf -- '- `%s` — `bpf/%s.c`: %s; kernel %s; %s; log level %s; %s lines; %s; `%s`\n' \
		"$file" "$srcname" "$desc" "$kernel" "$clangv" "$level" "$lines" "$outcome" "$reason"
}

{
	cat <<EOF
# Verifier log fixtures

Real BPF verifier logs captured on this machine by \`scripts/make-verifier-logs.sh\`
(run as root; regenerates everything below from \`test/fixtures/bpf/*.c\`).

- Host kernel \`$kernel\`, \`$clangv\`, \`$bpftoolv\`.
- \`<name>.log\`: \`bpftool -d prog load\`, i.e. libbpf with log_level 1|2|4 = 7
  (full per-instruction state trace, mark_precise backtracking, stats lines);
  exactly the text between libbpf's \`-- BEGIN PROG LOAD LOG --\` /
  \`-- END PROG LOAD LOG --\` markers.
- \`<name>_level1.log\`: \`bpf/load_with_log.c\` with log_level=1 (kernel buffer
  written verbatim). The kernel keeps a level-1 log only when verification
  fails; for a program that loads it is just the \`processed ...\` line.
- Logs over 1 MB are stored gzip'd (\`gzip -9n\`). The \`verification time N usec\`
  line varies between runs; the rest is deterministic for a kernel + clang.

Fixtures (file — source: program; kernel; clang; log level; lines; outcome; reason/last line):

EOF
	readme_line verify_loop verify_loop 7 rejected \
		"8-iteration loop fully unrolled by clang (8 straight-line bpf_ktime_get_ns calls into a volatile u32), then a NULL store"
	readme_line verify_loop_level1 verify_loop 1 rejected \
		"same program as verify_loop"
	readme_line bounded_loop_40 bounded_loop_40 7 loaded \
		"real (unroll disabled) 40-iteration loop, walked once per iteration (R6=0..40, mark_precise each pass)"
	readme_line bounded_loop_40_level1 bounded_loop_40 1 loaded \
		"same program as bounded_loop_40 (successful load: level 1 keeps only the stats line)"
	readme_line bounded_loop_400 bounded_loop_400 7 loaded \
		"same loop with 400 iterations"
	readme_line bounded_loop_40_fail bounded_loop_40_fail 7 rejected \
		"bounded_loop_40 followed by a NULL store after the loop"
	readme_line bounded_loop_40_fail_level1 bounded_loop_40_fail 1 rejected \
		"same program as bounded_loop_40_fail (full loop walk at level 1)"
	readme_line nested_loops nested_loops 7 loaded \
		"outer 6 x inner 5 bounded loops, neither unrolled"
	readme_line subprog_calls subprog_calls 7 loaded \
		"10-iteration loop calling a noinline static subprogram (frame1 on every pass)"
	readme_line no_loop no_loop 7 loaded \
		"straight-line program, no loops (pass-through case)"
	readme_line branching_loop_40 branching_loop_40 7 loaded \
		"40-iteration loop whose body is acc = acc & 1 ? acc + 3 : acc * 5 (else-arm re-walks, mark_precise chains through every iteration)"
	readme_line branching_loop_40_store branching_loop_40_store 7 loaded \
		"the same loop with a volatile store per iteration (arms never meet: deeper re-walk tree)"
	readme_line nested_branch_loops nested_branch_loops 7 loaded \
		"outer 6 x inner 5 loops, a random branch in the inner body"
	readme_line bpf_loop_callback bpf_loop_callback 7 loaded \
		"bpf_loop(64, cb) with a branching callback (frame1)"
	readme_line may_goto_loop may_goto_loop 7 loaded \
		"loop bounded by may_goto (can_loop) and i < 100, random branch in the body"
	readme_line bpf_for_iter bpf_for_iter 7 loaded \
		"open-coded numeric iterator (bpf_iter_num_new/next/destroy, as bpf_for) with a random branch"
} >"$OUT/README.md"
log "wrote $OUT/README.md"
log "done"
