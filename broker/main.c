/*
 * broker/main.c - `midge [-c FILE] [-p PORT] [-v] [-d] [-h]`, mosquitto's command line.
 */
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

/*
 * glibc gives the free top of a thread's heap back to the kernel once it exceeds the trim
 * threshold (128 KiB until a large block has been freed), and the pages come back as page
 * faults on the next growth. A worker whose subscriber reads slower than its publishers
 * write queues thousands of messages and frees them together a turn later: with the
 * default it shrank and grew its heap every turn (perf, fanin100-q0: sysmalloc 5-10% of the
 * broker, page faults on the new top, madvise 1%; this priming made it 0.72x the CPU per
 * message, bench/README.md). glibc raises the threshold by itself to twice the largest
 * block it has freed from mmap (up to 64 MiB): one 4 MiB block freed at start-up sets it
 * to ~8 MiB at once and leaves that adaptation on (mallopt would switch it off). Costs up
 * to 8 MiB of free heap kept per arena after a burst; blocks above 4 MiB still come from
 * mmap.
 */
static void prime_malloc(void)
{
#ifdef __GLIBC__
	void *volatile p = malloc(4u << 20);
	free(p);
#endif
}

/* Each client costs a file descriptor: take all the kernel allows (the hard limit) and say
 * how many clients that makes, so nobody finds out at the 1,025th connection. The reserve
 * counts what the broker itself holds: listen sockets per thread, each loop's epoll and
 * eventfd, the log, the store, stdio. */
static void raise_fd_limit(const mg_config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	long threads = cfg->threads > 0 ? cfg->threads : sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	unsigned long long cur = rl.rlim_cur == RLIM_INFINITY ? 1ull << 31 : rl.rlim_cur;
	unsigned long long reserve = 16 + 4ull * threads + 2ull * threads * (cfg->n_listeners + 1);
	unsigned long long room = cur > reserve ? cur - reserve : 0;
	if (cur != was)
		mg_log(MG_LOG_NOTICE, "Open-file limit raised from %llu to %llu: room for about %llu "
		       "client connections.", (unsigned long long)was, cur, room);
	else
		mg_log(MG_LOG_NOTICE, "Open-file limit %llu: room for about %llu client connections.",
		       cur, room);
	if (cfg->max_connections >= 0 && (unsigned long long)cfg->max_connections < room)
		mg_log(MG_LOG_NOTICE, "max_connections %d limits clients further.", cfg->max_connections);
}

int main(int argc, char **argv)
{
	mg_config cfg;
	mg_cli cli;
	char err[1024];
	int rc = 1;
	prime_malloc();
	mg_config_init(&cfg);
	int r = mg_cli_parse(argc, argv, &cli, err, sizeof err);
	if (r != 0) { /* like mosquitto: the error if any, the usage, exit status 3 */
		if (r < 0)
			fprintf(stderr, "%s\n", err);
		fputs(mg_usage(), stdout);
		mg_config_free(&cfg);
		return 3;
	}
	if (cli.config_file && mg_config_load(&cfg, cli.config_file, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		mg_config_free(&cfg);
		return 3;
	}
	mg_config_apply_cli(&cfg, &cli);
	mg_config_finish(&cfg);
	if (cli.test_config) {
		printf("Configuration OK\n");
		mg_config_free(&cfg);
		return 0;
	}
	if (cli.daemon && daemonize() < 0) {
		fprintf(stderr, "Error: Unable to run in the background: %s.\n", strerror(errno));
		mg_config_free(&cfg);
		return 1;
	}
	if (cfg.pid_file) {
		FILE *f = fopen(cfg.pid_file, "w");
		if (!f) {
			fprintf(stderr, "Error: Unable to write pid file %s: %s.\n", cfg.pid_file, strerror(errno));
			mg_config_free(&cfg);
			return 1;
		}
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	mg_log_open(&cfg);
	mg_log(MG_LOG_NOTICE, "midge version %s starting", MIDGE_VERSION);
	if (cfg.config_path)
		mg_log(MG_LOG_NOTICE, "Config loaded from %s.", cfg.config_path);
	else
		mg_log(MG_LOG_NOTICE, "Using default config.");
	mg_config_log_local_only(&cfg);
	raise_fd_limit(&cfg);

	/* Signals are taken by sigwait in this thread; block them before any thread starts. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A file past RLIMIT_FSIZE is a write error (EFBIG) that the store reports and survives
	 * (docs/persistence.md "Failure modes"), not a reason to die. */
	signal(SIGXFSZ, SIG_IGN);

	static mg_broker b;
	/* NULL in a build without libnats (cross builds): cluster_nats_url is then refused */
	extern const mg_cluster_ops mg_cluster_nats_ops __attribute__((weak));
	b.cluster_ops = &mg_cluster_nats_ops;
	r = mg_broker_start(&b, &cfg); /* also drops to `user` before any client is served */
	if (r == 0) {
		mg_broker_run_signals(&b);
		rc = 0;
	}
	mg_broker_stop(&b);
	mg_log(MG_LOG_NOTICE, "midge version %s terminating", MIDGE_VERSION);
	if (cfg.pid_file)
		unlink(cfg.pid_file);
	mg_log_close();
	/* A password check still hashing after mg_auth_stop's wait: the process ends under it,
	 * without exit handlers. OpenSSL's would free the digest tables that thread is using (a
	 * data race ThreadSanitizer reported, and on a slow machine a crash at exit waiting to
	 * happen); LeakSanitizer's check, one of them, is skipped for such a run. */
	if (mg_auth_left_running(&b)) {
		fflush(NULL);
		_exit(rc);
	}
	mg_config_free(&cfg);
	return rc;
}
