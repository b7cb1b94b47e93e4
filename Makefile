# A thin layer over CMake.  On a fresh Debian, start with `bash .ci/bootstrap
# demo` (installs what is missing, then runs `make demo`).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: all build demo test check test-release test-asan install bench pictures picture-index clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/lessonrun sync.lua
	$(BUILD)/lessonrun async.lua
	$(BUILD)/lessonrun index.lua
	$(BUILD)/lessonrun cpu.lua

# The whole suite, then again under AddressSanitizer + UBSan.  Both stages
# always run (a Release failure must not hide the sanitizers' verdict); the
# target fails if either did, and says which.
test:
	@rel=0; asan=0; \
	$(MAKE) --no-print-directory test-release || rel=$$?; \
	$(MAKE) --no-print-directory test-asan || asan=$$?; \
	echo "lessonrun tests: Release $$( [ $$rel -eq 0 ] && echo passed || echo FAILED ), ASan+UBSan $$( [ $$asan -eq 0 ] && echo passed || echo FAILED )"; \
	[ $$rel -eq 0 ] && [ $$asan -eq 0 ]

check: test

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLR_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(JOBS) -LE valgrind $(CTEST_ARGS)

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

bench: build
	bash bench/run.sh

# The timelines shown in the README.  sync and async run on the virtual clock,
# so the same build draws the same pictures; index.lua talks to a real server
# in real time and differs on every run, so it has a target of its own.
pictures: build
	$(BUILD)/lessonrun --virtual-time --trace=docs/sync.svg sync.lua >/dev/null
	$(BUILD)/lessonrun --virtual-time --trace=docs/async.svg async.lua >/dev/null

picture-index: build
	$(BUILD)/lessonrun --trace=docs/index.svg index.lua >/dev/null

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
