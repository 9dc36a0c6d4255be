/* test/unit/t.c - main() for unit test binaries: fork per test, time limit, summary. */
#include "t.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define T_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_LSAN 1
#endif
#endif
#ifdef T_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define T_MAX 1024
/* A test's time limit: a guard against hangs, not a timing check. T_SECONDS in the
   environment raises it where everything runs several times slower (qemu-user on a busy
   machine: scripts/run-platforms). */
#define T_SECONDS 60
static unsigned t_seconds = T_SECONDS;

static struct { const char *name; t_fn fn; } tests[T_MAX];
static int ntests;
int t_failed;

void t_register(const char *name, t_fn fn)
{
	if (ntests == T_MAX) {
		fprintf(stderr, "t: more than %d tests in one binary\n", T_MAX);
		exit(2);
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	if (!t_failed) /* only the first failure of a test is reported */
	{
		fprintf(stdout, "  %s:%d: ", file, line);
		va_start(ap, fmt);
		vfprintf(stdout, fmt, ap);
		va_end(ap);
		fputc('\n', stdout);
		fflush(stdout);
	}
	t_failed = 1;
}

static int run_one(int i)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 0;
	}
	if (pid == 0) {
		alarm(t_seconds);
		tests[i].fn();
		fflush(stdout);
#ifdef T_LSAN
		/* _exit skips LeakSanitizer's atexit check: run it here, so a leak fails the test. */
		if (__lsan_do_recoverable_leak_check())
			t_fail(__FILE__, __LINE__, "memory leaked (LeakSanitizer report above)");
#endif
		_exit(t_failed ? 1 : 0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		printf("PASS %s\n", tests[i].name);
		return 1;
	}
	if (WIFSIGNALED(st))
		printf("FAIL %s: killed by signal %d%s\n", tests[i].name, WTERMSIG(st),
		       WTERMSIG(st) == SIGALRM ? " (time limit)" : "");
	else
		printf("FAIL %s\n", tests[i].name);
	return 0;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	const char *limit = getenv("T_SECONDS");
	if (limit && atoi(limit) > 0)
		t_seconds = (unsigned)atoi(limit);
	for (int i = 0; i < ntests; i++) {
		if (argc > 1) {
			int want = 0;
			for (int a = 1; a < argc; a++)
				if (strcmp(argv[a], tests[i].name) == 0)
					want = 1;
			if (!want)
				continue;
		}
		if (run_one(i))
			passed++;
		else
			failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
