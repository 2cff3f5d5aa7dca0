#!/bin/bash
# Installs what building, running and testing ipft needs on Debian (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	clang llvm libelf-dev zlib1g-dev pkg-config make \
	qemu-system-x86 linux-image-amd64 \
	iptables iputils-ping iproute2 tcpdump libpcap0.8 kmod util-linux procps bc busybox-static libbpf-dev linux-libc-dev \
	python3-jsonschema bpftool >/dev/null
# The Debian package: building it (dpkg-dev: dpkg-shlibdeps), checking it, its man page and completions.
apt-get install -y -qq --no-install-recommends dpkg-dev lintian man-db bash-completion zsh fish >/dev/null
# Debian's 6.12 kernel (bookworm's own archive), the newest point release
# available: the end-to-end tests and the benchmark boot it too.
k612=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
	awk '{ print $1 }' | sort -V | tail -n 1)
[ -n "$k612" ] || { echo "deps.sh: no linux-image-6.12.*+deb12-amd64-unsigned in the archive" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "$k612" >/dev/null
# Its real-time flavour (PREEMPT_RT), the newest point release: the
# end-to-end tests boot it too.
k612rt=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-rt-amd64-unsigned$' |
	awk '{ print $1 }' | sort -V | tail -n 1)
[ -n "$k612rt" ] || { echo "deps.sh: no linux-image-6.12.*+deb12-rt-amd64-unsigned in the archive" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "$k612rt" >/dev/null
# virtme-ng boots test kernels under qemu with the host's files.
command -v vng >/dev/null || pip install -q virtme-ng
# tshark reads ipft's pcap-ng captures in the end-to-end tests (tests/e2e/outputs.rs).
# wireshark-common's question (may non-root users capture?) is answered by its
# default, no, under DEBIAN_FRONTEND=noninteractive.
apt-get install -y -qq --no-install-recommends tshark >/dev/null
# Perfetto's own Python protobuf bindings: the end-to-end tests decode ipft's
# Perfetto traces with them (tests/e2e/perfetto_check.py). Debian 12's python3
# is externally managed: installed beside Debian's packages, for root.
python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
python3 -c 'import perfetto.protos.perfetto.trace.perfetto_trace_pb2' 2>/dev/null ||
	python3 -m pip install -q --break-system-packages perfetto
# cargo-deb builds the .deb (README, "Install as a Debian package"); about 3 minutes to compile.
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
