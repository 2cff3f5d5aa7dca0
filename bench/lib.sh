# Sourced by the bench scripts that run on the host (run from the
# repository's root).

# newest REGEX: /boot's newest kernel image whose whole name matches REGEX
# (a regex, not a glob: vmlinuz-6.1* would also match 6.12, and
# vmlinuz-6.1.0-*-amd64 the -rt flavour).
newest() { ls /boot | grep -E "^$1\$" | sort -V | tail -n 1 | sed 's|^|/boot/|'; }

# build_base: with BASE=<git revision> set, builds that revision beside this
# tree (target/bench-base, its own target folder kept between runs so that a
# rebuild is incremental) and sets base_bin to its ipft; else base_bin is
# empty.
build_base() {
	base_bin=
	[ -n "${BASE:-}" ] || return 0
	git worktree remove --force target/bench-base 2>/dev/null || true
	git worktree add --detach target/bench-base "$BASE" > /dev/null
	(cd target/bench-base && CARGO_TARGET_DIR=../bench-base-target cargo build --release -q)
	base_bin=$PWD/target/bench-base-target/release/ipft
}

# run_guest DIR IMAGE COMMAND: boots kernel IMAGE under qemu (software
# emulation, 2 vCPUs, 2 GiB) with DIR (relative to the repository) writable,
# runs COMMAND there (its console in DIR/vng.log), and exits the script
# unless the guest script wrote DIR/done.
run_guest() {
	timeout 3000 vng --run "$2" --disable-kvm --force-9p --memory 2G --cpus 2 \
		--rwdir "$PWD/$1" --exec "$3" > "$1/vng.log" 2>&1 || true
	[ -f "$1/done" ] || { echo "guest did not finish: see $1" >&2; exit 1; }
}
