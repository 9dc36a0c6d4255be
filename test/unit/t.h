/*
 * test/unit/t.h - the unit test harness.
 *
 *   #include "t.h"
 *   TEST(varint_roundtrip) { CHECK(x == 1); CHECK_EQ_INT(a, b); CHECK_MEM(p, q, n); }
 *
 * Each test file is its own binary (test/unit/test_*.c -> build/test/test_*), linked with
 * t.c, which holds main(). Every test runs in a forked child with a time limit (libuv's
 * habit), so a crash or hang fails that test only. Output, one line per test:
 *     PASS name
 *     FAIL name: file:line: what
 * and a closing "N passed, N failed". Exit status 1 if any failed.
 * Run one test: build/test/test_x NAME.
 */
#ifndef MG_T_H
#define MG_T_H

#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stddef.h>

typedef void (*t_fn)(void);
void t_register(const char *name, t_fn fn);
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
extern int t_failed; /* set by t_fail in the child */

#define TEST(name)                                                          \
	static void test_##name(void);                                          \
	__attribute__((constructor)) static void t_reg_##name(void)             \
	{ t_register(#name, test_##name); }                                     \
	static void test_##name(void)

#define CHECK(cond) do { if (!(cond)) t_fail(__FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) t_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, _a, #b, _b); } while (0)
#define CHECK_MEM(a, b, n) do { size_t _n = (n); if (memcmp((a), (b), _n) != 0) { \
	t_fail(__FILE__, __LINE__, "%s differs from %s in %zu bytes", #a, #b, _n); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) t_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)
/* Stop the current test now if a check failed (e.g. before dereferencing). */
#define REQUIRE(cond) do { if (!(cond)) { t_fail(__FILE__, __LINE__, "%s", #cond); return; } } while (0)

/* The runner ends each forked test with _exit(), so LeakSanitizer's exit-time check never runs
 * there: a test that must free everything asks for a leak check itself. No-op without ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifdef T_ASAN
#include <sanitizer/lsan_interface.h>
#define CHECK_NO_LEAKS() CHECK(__lsan_do_recoverable_leak_check() == 0)
#else
#define CHECK_NO_LEAKS() ((void)0)
#endif

#endif
