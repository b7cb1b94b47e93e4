# A thin layer over CMake.  On a fresh Debian, start with `bash .ci/bootstrap
# demo` (installs what is missing, then runs `make demo`).
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: all build demo test check test-release test-asan test-fuzz fuzz install bench pictures picture-index clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/lessonrun sync.lua
	$(BUILD)/lessonrun async.lua
	$(BUILD)/lessonrun index.lua
	$(BUILD)/lessonrun cpu.lua

# The whole suite, then again under AddressSanitizer + UBSan, then each fuzz
# target for a short time.  Every stage always runs (a Release failure must
# not hide the sanitizers' verdict); the target fails if any did, and says which.
test:
	@rel=0; asan=0; fz=0; \
	$(MAKE) --no-print-directory test-release || rel=$$?; \
	$(MAKE) --no-print-directory test-asan || asan=$$?; \
	$(MAKE) --no-print-directory test-fuzz || fz=$$?; \
	say() { [ $$1 -eq 0 ] && echo passed || echo FAILED; }; \
	echo "lessonrun tests: Release $$(say $$rel), ASan+UBSan $$(say $$asan), fuzz $$(say $$fz)"; \
	[ $$rel -eq 0 ] && [ $$asan -eq 0 ] && [ $$fz -eq 0 ]

check: test

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLR_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(JOBS) -LE valgrind $(CTEST_ARGS)

# The libFuzzer targets (tests/fuzz/, clang): about 20 s each in `make test`,
# FUZZ_SECONDS each here; what they find stays in $(FUZZ_BUILD)/tests/fuzz/fuzz/.
$(FUZZ_BUILD)/CMakeCache.txt:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DLR_FUZZ=ON

test-fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz
	cd $(FUZZ_BUILD) && LR_FUZZ_SECONDS=$${LR_FUZZ_SECONDS:-20} ctest --output-on-failure -j$(JOBS) -L fuzz

fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz
	cd $(FUZZ_BUILD) && LR_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -L fuzz

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
