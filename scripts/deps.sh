#!/bin/bash
# Installs what building, running and testing ipft needs on Debian (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	clang llvm libelf-dev zlib1g-dev pkg-config make \
	qemu-system-x86 linux-image-amd64 \
	iptables iputils-ping iproute2 kmod util-linux procps bc busybox-static libbpf-dev linux-libc-dev \
	libpcap0.8 >/dev/null
# virtme-ng boots test kernels under qemu with the host's files.
command -v vng >/dev/null || pip install -q virtme-ng
