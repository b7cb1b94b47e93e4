/* The C unit tests' harness (tests/c/test_*.c), in the manner of libuv's
 * test/: each test is a function, each check that fails prints its file,
 * line and test and counts, and main ends with check_done():
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2); CHECK_EQ(f(2), 4); }
 *   int main(void) { RUN(test_x); return check_done(); }
 *
 * check_done() prints "N passed, N failed, N skipped" (tests, as the Lua
 * harness does) and returns the exit status: 1 if a check failed or nothing
 * ran, 77 (ctest's "skipped" here) if every test skipped, else 0. */
#ifndef LR_TEST_CHECK_H
#define LR_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>

static const char *check_test = "";   /* the test that is running */
static int check_failed_here;         /* checks failed in it */
static int check_passed, check_failed, check_skipped;

#define CHECK_FAIL(fmt, ...)                                                        \
  (check_failed_here++,                                                             \
   fprintf(stderr, "%s:%d: %s: " fmt "\n", __FILE__, __LINE__, check_test, __VA_ARGS__))

/* CHECK(cond): cond must hold */
#define CHECK(cond) \
  do { if (!(cond)) CHECK_FAIL("check failed: %s", #cond); } while (0)

/* CHECK_EQ(a, b): equal as integers (pointers too: cast them to uintptr_t) */
#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                                  \
    if (a_ != b_) CHECK_FAIL("%s == %s: %" PRIuMAX " != %" PRIuMAX, #a, #b, a_, b_);     \
  } while (0)

/* SKIP(why): end the running test as skipped (a return from a test function) */
#define SKIP(why) \
  do { printf("skip %s: %s\n", check_test, why); check_skipped++; return; } while (0)

#define RUN(fn)                                                                  \
  do {                                                                           \
    int skipped_ = check_skipped;                                                \
    check_test = #fn;                                                            \
    check_failed_here = 0;                                                       \
    fn();                                                                        \
    if (check_failed_here) { check_failed++; printf("FAIL %s\n", #fn); }          \
    else if (check_skipped == skipped_) { check_passed++; printf("ok   %s\n", #fn); } \
  } while (0)

static inline int check_done(void) {
  printf("%d passed, %d failed, %d skipped\n", check_passed, check_failed, check_skipped);
  fflush(stdout);
  if (check_failed) return 1;
  if (check_passed == 0) return check_skipped ? 77 : 1;
  return 0;
}

/* Under AddressSanitizer a request too big for memory is an error report
 * unless allocator_may_return_null is set: the tests check that it fails
 * with NULL, so they ask for that.  (Also under LeakSanitizer's leak check,
 * which stays on.) */
#if defined(__SANITIZE_ADDRESS__)
#define CHECK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_ASAN 1
#endif
#endif
#ifdef CHECK_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

#endif
