# Makefile - short commands for strand; the build itself is CMake (CMakeLists.txt, CMakePresets.json).
#
#   make            release build into $(B)/ (library, tests, examples, benchmarks)
#   make check      every check, in order, with a summary line (scripts/check.sh)
#   make demo       build, then run $(B)/examples/demo and examples/demo_kv.sh
#   make bench      build, then bench/run.sh (strand vs Go)
#   make install    install into $(PREFIX) (default /usr/local)
#   make docs       the HTML reference of include/strand.h into $(B)/docs/html (Doxygen)
#   make fuzz       tests/fuzz/run.sh
#   make clean      remove the build directories this Makefile creates
#
# `check` and `demo` first run scripts/install-deps.sh (installs only missing Debian packages).
# B is the build directory (prefix of the other ones: $(B)-asan, $(B)-tsan, ...), so several
# trees can coexist, e.g. `make check B=build-mine`.

B       ?= build
PREFIX  ?= /usr/local
JOBS    ?= 2
CMAKE   ?= cmake

.PHONY: all build check demo bench install fuzz clean deps docs

all: build

build:
	$(CMAKE) --preset release -B $(B)
	$(CMAKE) --build $(B) -j$(JOBS)

deps:
	scripts/install-deps.sh

check: deps
	B=$(B) JOBS=$(JOBS) scripts/check.sh

demo: deps build
	@if [ -x $(B)/examples/demo ]; then \
		echo "== running $(B)/examples/demo"; $(B)/examples/demo || exit 1; \
	else \
		echo "make demo: $(B)/examples/demo does not exist"; exit 1; \
	fi
	@if [ -f examples/demo_kv.sh ]; then \
		echo "== running examples/demo_kv.sh (kv_server against redis-server)"; \
		bash examples/demo_kv.sh $(B) || exit 1; \
	fi

bench: build
	@if [ -f bench/run.sh ]; then \
		STRAND_BUILD_DIR=$(abspath $(B)) bash bench/run.sh; \
	else \
		echo "make bench: bench/run.sh does not exist yet"; exit 1; \
	fi

install: build
	$(CMAKE) --install $(B) --prefix $(PREFIX)
	@if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

docs:
	@mkdir -p $(B)/docs
	STRAND_DOCS_OUT=$(abspath $(B))/docs doxygen docs/Doxyfile
	@echo "make docs: the reference is $(B)/docs/html/index.html"

fuzz:
	@if [ -f tests/fuzz/run.sh ]; then \
		bash tests/fuzz/run.sh; \
	else \
		echo "make fuzz: tests/fuzz/run.sh does not exist yet"; exit 1; \
	fi

clean:
	rm -rf $(B) $(B)-asan $(B)-tsan $(B)-debug $(B)-aarch64 $(B)-ucontext
