# A thin layer over CMake.  On a fresh Debian, start with `bash .ci/bootstrap
# demo` (installs what is missing, then runs `make demo`).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: all build demo test test-release test-asan install bench pictures clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/lessonrun sync.lua
	$(BUILD)/lessonrun async.lua
	$(BUILD)/lessonrun index.lua
	$(BUILD)/lessonrun cpu.lua

# The whole suite, then again under AddressSanitizer + UBSan.
test: test-release test-asan

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

# the timelines shown in the README
pictures: build
	$(BUILD)/lessonrun --virtual-time --trace=docs/sync.svg sync.lua >/dev/null
	$(BUILD)/lessonrun --virtual-time --trace=docs/async.svg async.lua >/dev/null
	$(BUILD)/lessonrun --trace=docs/index.svg index.lua >/dev/null

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
