#!/usr/bin/env bash
# icount.sh prints the instructions one iteration of a benchmark executes,
# counted by valgrind's callgrind: a measure that, unlike ns/op, does not
# move with the machine or the hour (see bench/README.md, "Instruction
# counts").
#
#   scripts/icount.sh [-b test-binary] [-p package] benchmark-regexp...
#
# Without -b it builds the package's test binary (default: the repository's
# root package). Each benchmark runs 1,000 and 41,000 iterations, twice
# each; the larger total of each pair is kept (a run now and then reports a
# second, much smaller total), and the difference is divided by 40,000, so
# the set-up of the benchmark cancels out.
#
# Example, comparing two builds:
#
#   go test -c -o /tmp/old.test .   # at the old commit
#   scripts/icount.sh -b /tmp/old.test '^BenchmarkW2Increment$'
#   scripts/icount.sh '^BenchmarkW2Increment$'
#
# Counts of one build spread by about ±20 instructions from run to run
# (the coarse clock's goroutine ticks by the wall clock, and valgrind runs
# an iteration far slower than the processor): to tell two builds apart
# by less than ~50, run it three times and compare the medians.
#
# Anchor the regexp at both ends: 'W2Increment$' also runs
# BenchmarkHTTPW2Increment, and the counts of both add up.
set -euo pipefail

bin=""
pkg="."
while getopts "b:p:" opt; do
	case $opt in
	b) bin=$OPTARG ;;
	p) pkg=$OPTARG ;;
	*) echo "usage: $0 [-b test-binary] [-p package] benchmark-regexp..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	echo "usage: $0 [-b test-binary] [-p package] benchmark-regexp..." >&2
	exit 2
fi
command -v valgrind >/dev/null || { echo "icount: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if [ -z "$bin" ]; then
	bin=$dir/pkg.test
	go test -c -o "$bin" "$pkg"
fi
bin=$(realpath "$bin")

# total N REGEXP prints the instructions of a run of N iterations.
total() {
	# Asynchronous preemption signals crash callgrind; the collector's
	# work depends on timing, so it is left out (count allocations
	# separately).
	(cd "$dir" && GODEBUG=asyncpreemptoff=1 GOGC=off valgrind --tool=callgrind \
		--callgrind-out-file=/dev/null "$bin" -test.run '^$' -test.bench "$2" \
		-test.benchtime "$1x" -test.cpu 1 2>&1) |
		awk '/Collected/ { gsub(",", "", $4); n = $4 } END { print n + 0 }'
}

for re in "$@"; do
	best() {
		local a b
		a=$(total "$1" "$re")
		b=$(total "$1" "$re")
		echo $((a > b ? a : b))
	}
	small=$(best 1000)
	large=$(best 41000)
	printf '%s\t%d\n' "$re" $(((large - small) / 40000))
done
