#!/usr/bin/env bash
# tests/test_install.sh - checks that an installed strand is usable by an outside program.
#
# Usage: tests/test_install.sh [BUILD_DIR]   (default: build; the build must already exist)
#
# Installs BUILD_DIR into a temporary prefix, then:
#  1. the installed header compiles on its own under strict -std=c11 -Wall -Wextra -Werror;
#  2. a small app builds with `cc app.c $(pkg-config --cflags --libs strand)` and runs against
#     the installed libstrand.so;
#  3. the same app builds in a tiny CMake project with find_package(strand), once against
#     strand::strand (shared) and once against strand::strand_static (no libstrand.so needed);
#  4. `nm -D --defined-only libstrand.so` shows only public strand_* symbols (no strand__*
#     internals, nothing else of ours);
#  5. the gdb script is installed as share/strand/strand-gdb.py (and gdb can source it);
#  5b. libstrand_hook: a program doing plain read(2) on a pipe in strands builds with
#     `pkg-config strand-hook` and with find_package(strand)'s strand::hook, and runs (on
#     one worker, the read must park the strand for the writer to run); the library exports
#     exactly the libc names it interposes (nm);
#  6. `make uninstall B=BUILD_DIR` removes every file the install put there, and nothing else.
# Everything happens in a temp dir that is removed on exit. The one file outside it that the
# install writes, BUILD_DIR/install_manifest.txt (what `make uninstall` reads), is put back as
# it was, so a `make install` done before this test can still be uninstalled.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
[ -f "$BUILD/CMakeCache.txt" ] || { echo "test_install: no build in $BUILD (run make first)" >&2; exit 1; }
if grep -q '^STRAND_SANITIZE_FLAGS:INTERNAL=.' "$BUILD/CMakeCache.txt"; then
    echo "test_install: $BUILD is a sanitizer build; outside programs need a plain one (e.g. build/)" >&2
    exit 1
fi

TMP=$(mktemp -d /tmp/strand-install.XXXXXX)
MANIFEST="$BUILD/install_manifest.txt"
[ -f "$MANIFEST" ] && cp -p "$MANIFEST" "$TMP/manifest.saved"
restore_manifest() {
    if [ -f "$TMP/manifest.saved" ]; then cp -p "$TMP/manifest.saved" "$MANIFEST"; else rm -f "$MANIFEST"; fi
}
trap 'restore_manifest; rm -rf "$TMP"' EXIT
PREFIX="$TMP/prefix"
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
step() { echo "test_install: $*"; }

step "installing $BUILD into $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" || { cat "$TMP/install.log"; fail "cmake --install"; }

PC=$(find "$PREFIX" -name strand.pc -path '*/pkgconfig/*' | head -n1)
[ -n "$PC" ] || fail "no strand.pc installed"
LIBDIR=$(dirname "$(dirname "$PC")")
GDB_SCRIPT="$PREFIX/share/strand/strand-gdb.py"
for f in "$PREFIX/include/strand.h" "$LIBDIR/libstrand.a" "$LIBDIR/libstrand.so" \
         "$LIBDIR/cmake/strand/strandConfig.cmake" "$LIBDIR/cmake/strand/strandConfigVersion.cmake" \
         "$GDB_SCRIPT"; do
    [ -e "$f" ] || fail "missing $f"
done
SONAME=$(objdump -p "$LIBDIR/libstrand.so" | awk '/SONAME/ {print $2}')
[ -n "$SONAME" ] || fail "libstrand.so has no SONAME"
[ -e "$LIBDIR/$SONAME" ] || fail "SONAME $SONAME not installed"
step "installed: header, libstrand.a, libstrand.so (SONAME $SONAME), strand.pc, CMake package, gdb script"

# 1. The header alone, as an outside program sees it (no _GNU_SOURCE, no GNU dialect).
printf '#include <strand.h>\nint strand_header_check;\n' >"$TMP/hdr.c"
cc -std=c11 -Wall -Wextra -Werror -I"$PREFIX/include" -c "$TMP/hdr.c" -o "$TMP/hdr.o" \
    || fail "include/strand.h does not compile on its own with -std=c11"
step "strand.h compiles on its own (-std=c11 -Wall -Wextra -Werror)"

# The app: spawns strands from the first strand, joins them, checks every result.
cat >"$TMP/app.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <strand.h>

static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;
    strand_yield();
    return (void *)(n * n);
}

static void *first(void *arg)
{
    (void)arg;
    int64_t ids[16];
    for (intptr_t i = 0; i < 16; i++) {
        ids[i] = strand_spawn(square, (void *)i);
        if (ids[i] <= 0)
            return (void *)1;
    }
    for (intptr_t i = 0; i < 16; i++) {
        void *r = NULL;
        if (strand_join(ids[i], &r) != 0 || (intptr_t)r != i * i)
            return (void *)2;
    }
    return (void *)0;
}

int main(void)
{
    void *result = (void *)-1;
    int rc = strand_run(first, NULL, &result);
    if (rc != 0 || result != NULL) {
        fprintf(stderr, "app: strand_run rc=%d result=%p\n", rc, result);
        return 1;
    }
    puts("app: ok");
    return 0;
}
EOF

# 2. pkg-config, shared library.
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
CFLAGS_PC=$(pkg-config --cflags strand)
LIBS_PC=$(pkg-config --libs strand)
# shellcheck disable=SC2086
cc "$TMP/app.c" $CFLAGS_PC $LIBS_PC -o "$TMP/app_pc" || fail "cc app.c \$(pkg-config --cflags --libs strand)"
# (Output captured first: `ldd | grep -q` under pipefail fails when grep quits before ldd
# has written everything and ldd dies of SIGPIPE.)
LDD=$(LD_LIBRARY_PATH="$LIBDIR" ldd "$TMP/app_pc")
case "$LDD" in *"$LIBDIR/$SONAME"*) ;; *) echo "$LDD" >&2; fail "app_pc does not load the installed $SONAME" ;; esac
LD_LIBRARY_PATH="$LIBDIR" "$TMP/app_pc" || fail "app built with pkg-config did not run correctly"
step "pkg-config build ok ($LIBS_PC)"

# 3. find_package(strand), shared and static.
mkdir -p "$TMP/cmapp"
cp "$TMP/app.c" "$TMP/cmapp/app.c"
cat >"$TMP/cmapp/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(strand_install_check C)
find_package(strand 0.1 REQUIRED CONFIG)
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE strand::strand)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE strand::strand_static)
EOF
cmake -S "$TMP/cmapp" -B "$TMP/cmapp/build" -DCMAKE_PREFIX_PATH="$PREFIX" >"$TMP/cm.log" 2>&1 \
    || { cat "$TMP/cm.log"; fail "find_package(strand) configure"; }
cmake --build "$TMP/cmapp/build" >>"$TMP/cm.log" 2>&1 || { cat "$TMP/cm.log"; fail "find_package(strand) build"; }
"$TMP/cmapp/build/app_shared" || fail "app_shared (strand::strand) did not run correctly"
"$TMP/cmapp/build/app_static" || fail "app_static (strand::strand_static) did not run correctly"
if objdump -p "$TMP/cmapp/build/app_static" | grep 'NEEDED.*libstrand' >/dev/null; then
    fail "app_static links libstrand.so dynamically"
fi
step "find_package(strand) ok: strand::strand and strand::strand_static"

# 4. Exported symbols: only the public strand_* API.
nm -D --defined-only "$LIBDIR/libstrand.so" | awk '{print $NF}' | sort -u >"$TMP/syms"
[ -s "$TMP/syms" ] || fail "libstrand.so exports nothing"
BAD=$(grep -Ev '^strand_[a-z0-9]' "$TMP/syms" | grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
if [ -n "$BAD" ]; then
    echo "$BAD" | sed 's/^/  unexpected export: /' >&2
    fail "libstrand.so exports symbols other than strand_*"
fi
# ... and every function the installed header names is really there.
grep -o 'strand_[a-z0-9_]*(' "$PREFIX/include/strand.h" | tr -d '(' | sort -u >"$TMP/decl"
MISSING=$(comm -23 "$TMP/decl" "$TMP/syms")
if [ -n "$MISSING" ]; then
    echo "$MISSING" | sed 's/^/  declared in strand.h, not exported: /' >&2
    fail "libstrand.so lacks functions strand.h declares"
fi
step "libstrand.so exports $(wc -l <"$TMP/syms") symbols, all strand_*, covering the $(wc -l <"$TMP/decl") functions strand.h declares"

# 5. The gdb script: the installed copy is the one in tools/, and gdb accepts it.
cmp -s "$GDB_SCRIPT" "$ROOT/tools/strand-gdb.py" || fail "$GDB_SCRIPT differs from tools/strand-gdb.py"
if command -v gdb >/dev/null; then
    gdb -batch -nx -ex "source $GDB_SCRIPT" -ex "help info strands" >"$TMP/gdb.log" 2>&1 \
        && grep -qi strand "$TMP/gdb.log" || { cat "$TMP/gdb.log"; fail "gdb cannot source $GDB_SCRIPT"; }
    step "gdb script installed: source $GDB_SCRIPT (gdb loads it)"
else
    step "gdb script installed: $GDB_SCRIPT (gdb not installed: not loaded)"
fi

# 5b. libstrand_hook: pkg-config strand-hook and strand::hook; exports only libc names.
HOOK_SO="$LIBDIR/libstrand_hook.so"
[ -e "$HOOK_SO" ] || fail "missing $HOOK_SO"
[ -e "$LIBDIR/pkgconfig/strand-hook.pc" ] || fail "missing strand-hook.pc"
cat >"$TMP/hookapp.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
#include <strand.h>

static int p[2];

static void *writer(void *arg)
{
    (void)arg;
    usleep(20000); /* parks too: the reader below is parked in read(2) meanwhile */
    return write(p[1], "hi", 2) == 2 ? NULL : (void *)1;
}

static void *first(void *arg)
{
    (void)arg;
    char b[4];
    if (pipe(p) != 0)
        return (void *)1;
    int64_t id = strand_spawn(writer, NULL);
    if (read(p[0], b, sizeof b) != 2) /* only a parked read lets the writer run */
        return (void *)2;
    void *r = (void *)3;
    strand_join(id, &r);
    return r;
}

int main(void)
{
    strand_config cfg = { .workers = 1 };
    void *result = (void *)-1;
    if (strand_init(&cfg) != 0 || strand_run(first, NULL, &result) != 0 || result != NULL) {
        fprintf(stderr, "hookapp: failed (%p)\n", result);
        return 1;
    }
    puts("hookapp: ok");
    return 0;
}
EOF
HOOK_LIBS=$(pkg-config --libs strand-hook)
# shellcheck disable=SC2086
cc "$TMP/hookapp.c" $CFLAGS_PC $HOOK_LIBS -o "$TMP/hookapp_pc" || fail "cc hookapp.c \$(pkg-config --libs strand-hook)"
LD_LIBRARY_PATH="$LIBDIR" timeout 20 "$TMP/hookapp_pc" || fail "hookapp built with pkg-config strand-hook did not run correctly"
mkdir -p "$TMP/hookcm"
cp "$TMP/hookapp.c" "$TMP/hookcm/app.c"
cat >"$TMP/hookcm/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(strand_hook_install_check C)
find_package(strand 0.1 REQUIRED CONFIG)
add_executable(hookapp app.c)
target_link_libraries(hookapp PRIVATE strand::hook)
EOF
{ cmake -S "$TMP/hookcm" -B "$TMP/hookcm/build" -DCMAKE_PREFIX_PATH="$PREFIX" >"$TMP/hcm.log" 2>&1 &&
  cmake --build "$TMP/hookcm/build" >>"$TMP/hcm.log" 2>&1; } || { cat "$TMP/hcm.log"; fail "strand::hook build"; }
timeout 20 "$TMP/hookcm/build/hookapp" || fail "hookapp (strand::hook) did not run correctly"
nm -D --defined-only "$HOOK_SO" | awk '{print $NF}' | sort -u >"$TMP/hooksyms"
HOOK_WANT="accept accept4 close connect dup dup2 dup3 fclose fcntl fcntl64 getaddrinfo ioctl nanosleep pipe pipe2 poll read readv recv recvfrom recvmsg select send sendmsg sendto setsockopt sleep socket socketpair usleep write writev"
HOOK_BAD=$(grep -Evx "$(echo "$HOOK_WANT _init _fini _edata _end __bss_start" | tr ' ' '|')" "$TMP/hooksyms" || true)
[ -z "$HOOK_BAD" ] || { echo "$HOOK_BAD" | sed 's/^/  unexpected export: /' >&2; fail "libstrand_hook.so exports more than the libc names it interposes"; }
for s in $HOOK_WANT; do grep -qx "$s" "$TMP/hooksyms" || fail "libstrand_hook.so does not export $s"; done
step "libstrand_hook: pkg-config strand-hook and strand::hook builds run; it exports exactly the $(echo $HOOK_WANT | wc -w) interposed libc names"

# 6. make uninstall: every file and link of the manifest is gone, and nothing else remains.
grep -qx "$PREFIX/include/strand.h" "$MANIFEST" || fail "$MANIFEST does not list this install"
N_INSTALLED=$(grep -c . "$MANIFEST")
touch "$PREFIX/include/not-ours.h"
make -s -C "$ROOT" uninstall B="$BUILD" >"$TMP/uninstall.log" 2>&1 || { cat "$TMP/uninstall.log"; fail "make uninstall"; }
while IFS= read -r f || [ -n "$f" ]; do
    if [ -e "$f" ] || [ -L "$f" ]; then fail "make uninstall left $f"; fi
done <"$MANIFEST"
[ -e "$PREFIX/include/not-ours.h" ] || fail "make uninstall removed a file it did not install"
rm -f "$PREFIX/include/not-ours.h"
LEFT=$(find "$PREFIX" \( -type f -o -type l \) -print)
[ -z "$LEFT" ] || { echo "$LEFT" | sed 's/^/  left: /' >&2; fail "files remain under $PREFIX after make uninstall"; }
[ ! -d "$LIBDIR/cmake/strand" ] && [ ! -d "$PREFIX/share/strand" ] || fail "make uninstall left strand's own directories"
step "make uninstall removed all $N_INSTALLED installed files, and only those"
echo "test_install: PASS"
