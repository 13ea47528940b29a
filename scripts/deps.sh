#!/usr/bin/env bash
# Installs what cpbench needs on a fresh Debian 12 machine: cmake, a C
# compiler, jemalloc (linked into release builds), Go and golang.org/x/sync,
# x/time (the Go reference, --impl=go); with --test also what the
# test suite needs: clang with libFuzzer (fuzz preset) and matplotlib (plots).
# As root it apt-installs what is missing; otherwise it prints the line to run.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v make >/dev/null 2>&1 || need+=(make)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists jemalloc 2>/dev/null || need+=(libjemalloc-dev)
# the Go reference (--impl=go): Go and the x/ packages its twins import, in
# GOPATH mode from Debian's packages (no module proxy needed)
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/sync ] || need+=(golang-golang-x-sync-dev)
[ -d /usr/share/gocode/src/golang.org/x/time ] || need+=(golang-golang-x-time-dev)
if [ "${1:-}" = --test ]; then
    command -v clang >/dev/null 2>&1 || need+=(clang)
    # libFuzzer and the sanitizer runtimes for clang (the fuzz preset)
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-dev)
    /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
else
    echo "deps: missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
    # jemalloc, Go (the Go reference), clang (fuzz) and matplotlib (plots) are
    # optional; the build tools are not.
    for p in "${need[@]}"; do
        case "$p" in cmake|gcc|make) exit 1 ;; esac
    done
fi
