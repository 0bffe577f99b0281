# Makefile - short commands for strand; the build itself is CMake (CMakeLists.txt, CMakePresets.json).
#
#   make            release build into $(B)/ (library, tests, examples, benchmarks)
#   make check      every check, in order, with a summary line (scripts/check.sh)
#   make demo       quiet build of the library and examples into $(B)-demo/, then run
#                   $(B)-demo/examples/demo, examples/demo_kv.sh and examples/supervisor
#   make bench      build, then bench/run.sh (strand vs Go)
#   make install    install into $(PREFIX) (default /usr/local)
#   make docs       the HTML reference of include/strand.h into $(B)/docs/html (Doxygen)
#   make uninstall  remove exactly the files `make install` put there ($(B)/install_manifest.txt)
#   make fuzz       tests/fuzz/run.sh
#   make clean      remove the build directories this Makefile creates
#
# `check` and `demo` first run scripts/install-deps.sh (installs only missing Debian packages):
# `check` the whole toolchain, `demo` only its own small set (compiler, cmake, redis).
# B is the build directory (prefix of the other ones: $(B)-asan, $(B)-tsan, ...), so several
# trees can coexist, e.g. `make check B=build-mine`.

B       ?= build
DEMO_B  ?= $(B)-demo
PREFIX  ?= /usr/local
JOBS    ?= 2
CMAKE   ?= cmake

.PHONY: all build check demo bench install uninstall fuzz clean deps docs

all: build

build:
	$(CMAKE) --preset release -B $(B)
	$(CMAKE) --build $(B) -j$(JOBS)

deps:
	scripts/install-deps.sh

check: deps
	B=$(B) JOBS=$(JOBS) scripts/check.sh

# The demo tree has no tests and no benchmarks (so no cmocka, Go, ...): its own directory, so
# it never changes the configuration of $(B). Build output goes to a log; on failure its end
# is shown.
demo:
	@scripts/install-deps.sh demo
	@mkdir -p $(DEMO_B)
	@echo "make demo: building the library and the examples in $(DEMO_B)/ (build log: $(DEMO_B)/build.log)"
	@{ $(CMAKE) --preset release -B $(DEMO_B) -DSTRAND_BUILD_TESTS=OFF -DSTRAND_BENCH=OFF && \
	   $(CMAKE) --build $(DEMO_B) -j$(JOBS); } >$(DEMO_B)/build.log 2>&1 || { \
		echo "make demo: the build failed; the last lines of $(DEMO_B)/build.log:"; \
		tail -n 30 $(DEMO_B)/build.log; exit 1; }
	@echo
	@$(DEMO_B)/examples/demo
	@echo
	@bash examples/demo_kv.sh $(DEMO_B)
	@echo
	@$(DEMO_B)/examples/supervisor
	@echo
	@echo "make demo: done. The programs are in examples/ (built in $(DEMO_B)/examples/)."
	@echo "README.md shows a first program; \`make check\` runs every test."

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
# Removes each file listed in the manifest CMake wrote at install time (one absolute path a
# line), then the directories of strand's own that this leaves empty. Fails if a file could
# not be removed (e.g. installed as root, uninstalled as someone else).
uninstall:
	@[ -f $(B)/install_manifest.txt ] || { \
		echo "make uninstall: no $(B)/install_manifest.txt (nothing installed from $(B))"; exit 1; }
	@st=0; \
	while IFS= read -r f || [ -n "$$f" ]; do \
		if [ -e "$$f" ] || [ -L "$$f" ]; then \
			if rm -f "$$f"; then echo "removed $$f"; else st=1; fi; \
		fi; \
	done <$(B)/install_manifest.txt; \
	for d in $$(sed -n 's|/cmake/strand/[^/]*$$|/cmake/strand|p; s|/share/strand/[^/]*$$|/share/strand|p' \
			$(B)/install_manifest.txt | sort -u); do \
		rmdir "$$d" 2>/dev/null && echo "removed $$d/"; \
	done; \
	if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi; \
	exit $$st

fuzz:
	@if [ -f tests/fuzz/run.sh ]; then \
		bash tests/fuzz/run.sh; \
	else \
		echo "make fuzz: tests/fuzz/run.sh does not exist yet"; exit 1; \
	fi

clean:
	rm -rf $(B) $(B)-asan $(B)-tsan $(B)-debug $(B)-aarch64 $(B)-ucontext $(DEMO_B)
