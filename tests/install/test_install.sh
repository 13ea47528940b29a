#!/usr/bin/env bash
# libcp used from outside the project, as its README says: install into a
# temporary prefix (cmake --install BINARY_DIR --prefix TMP), then build
# examples/ with the system cc and nothing but what
# `pkg-config --cflags --libs cp` says, and run it on every backend. Then
# move the installed tree elsewhere and build again: cp.pc must find its
# prefix from its own place (${pcfiledir}), not from the configure-time
# CMAKE_INSTALL_PREFIX. Every header the installed headers include must be
# installed too.
#
# Sanitizer builds: libcp.a is instrumented, so a program linking it needs
# the sanitizer's runtime; cp.pc's Libs carries that flag in those builds
# (CMakeLists.txt, CP_PC_LIBS_EXTRA), so this test runs there as well.
#
# Usage: test_install.sh CMAKE BINARY_DIR SOURCE_DIR. Exit 77 (ctest: skipped)
# only when pkg-config is missing.
set -u
cmake="$1"
bindir="$2"
srcdir="$3"
if ! command -v pkg-config >/dev/null; then
    echo "skipped: no pkg-config (apt-get install -y pkg-config)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
check() {
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

if ! "$cmake" --install "$bindir" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: cmake --install $bindir --prefix $tmp/prefix"
    exit 1
fi

# every public header is installed, and every <cp/...> they include exists
headers_ok() {  # headers_ok PREFIX
    local inc="$1/include" ok=0 h name
    for h in "$srcdir"/include/cp/*.h; do
        name=${h#"$srcdir/include/"}
        [ -f "$inc/$name" ] || { echo "  not installed: $name"; ok=1; }
    done
    for name in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\(cp\/[^>]*\)>.*/\1/p' "$inc"/cp/*.h | sort -u); do
        [ -f "$inc/$name" ] || { echo "  included but not installed: $name"; ok=1; }
    done
    return $ok
}
check "installed headers" headers_ok "$tmp/prefix"

# the families: the backends cpbench --list names (go is not one of libcp's)
families=$("$bindir/cpbench" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && $1 != "go" {print $1}')
[ -n "$families" ] || { echo "FAIL: no backend in $bindir/cpbench --list"; exit 1; }

# build and run examples/pipeline.c from PREFIX through pkg-config alone, in
# an empty directory, with no include or library path from the environment
build_run() {  # build_run PREFIX TAG
    local prefix="$1" tag="$2" pc flags out b
    pc=$(find "$prefix" -name cp.pc -print -quit)
    [ -n "$pc" ] || { echo "  no cp.pc under $prefix"; return 1; }
    export PKG_CONFIG_PATH
    PKG_CONFIG_PATH=$(dirname "$pc")
    flags=$(pkg-config --cflags --libs cp) || { echo "  pkg-config --cflags --libs cp failed"; return 1; }
    echo "  $tag: pkg-config --cflags --libs cp: $flags"
    # the flags must point into this tree (a system-wide cp.pc does not count)
    case "$(cd "$(pkg-config --variable=includedir cp)" 2>/dev/null && pwd -P)" in
        "$(cd "$prefix" && pwd -P)"/*) ;;
        *) echo "  includedir $(pkg-config --variable=includedir cp) is not under $prefix"; return 1 ;;
    esac
    mkdir -p "$tmp/build-$tag"
    # shellcheck disable=SC2086 # the flags are words
    (cd "$tmp/build-$tag" && env -u CPATH -u C_INCLUDE_PATH -u LIBRARY_PATH \
        cc -O2 "$srcdir/examples/pipeline.c" $flags -o pipeline) || { echo "  cc failed"; return 1; }
    for b in $families; do
        out=$("$tmp/build-$tag/pipeline" "$b" 2>&1) || { echo "  pipeline $b failed: $out"; return 1; }
        case "$out" in
            "$b: sum=5000050000 (closed), expected 5000050000") ;;
            *) echo "  pipeline $b printed: $out"; return 1 ;;
        esac
    done
}
check "examples/pipeline.c built with pkg-config's flags and run" build_run "$tmp/prefix" installed
mv "$tmp/prefix" "$tmp/moved"
check "the same after moving the installed tree (cp.pc is relocatable)" build_run "$tmp/moved" moved

echo "test_install: $passes passed, $fails failed"
[ $fails -eq 0 ]
