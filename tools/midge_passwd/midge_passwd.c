/*
 * midge_passwd - manage a password file for midge (and mosquitto): mosquitto_passwd's flags,
 * prompts, messages and exit statuses, so scripts written for one work with the other.
 *
 *   midge_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username
 *   midge_passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username password
 *   midge_passwd -U passwordfile
 *
 * Lines are written by broker/passwd.c (mg_pw_format), the same code that reads them in the
 * broker, so what this tool writes the broker reads. An existing file is changed the way
 * mosquitto_passwd changes it: copied to FILE.tmp first, rewritten through an unlinked
 * temporary file, and FILE.tmp removed once the new contents are in place.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "broker/passwd.h"

#define MAX_PASSWORD 65500 /* mosquitto_passwd's buffer */

static int hashtype = MG_PW_PBKDF2;
static int iterations = MG_PW_DEFAULT_ITERATIONS;

static void usage(void)
{
	printf("midge_passwd is a tool for managing password files for midge (and mosquitto).\n\n");
	printf("Usage: midge_passwd [-H sha512 | -H sha512-pbkdf2] [-c | -D] passwordfile username\n");
	printf("       midge_passwd [-H sha512 | -H sha512-pbkdf2] [-c] -b passwordfile username password\n");
	printf("       midge_passwd -U passwordfile\n");
	printf(" -b : run in batch mode to allow passing passwords on the command line.\n");
	printf(" -c : create a new password file. This will overwrite existing files.\n");
	printf(" -D : delete the username rather than adding/updating its password.\n");
	printf(" -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.\n");
	printf("      Mosquitto 1.6 and earlier defaulted to sha512.\n");
	printf(" -I : the number of PBKDF2 iterations for sha512-pbkdf2 (default %d).\n", MG_PW_DEFAULT_ITERATIONS);
	printf(" -U : update a plain text password file to use hashed passwords.\n");
	printf("\nSee midge_passwd(1) for more information.\n\n");
}

/* ---- the terminal: no echo while a password is typed ---- */

static void reset_term(void)
{
	struct termios ts;
	if (tcgetattr(0, &ts) == 0) {
		ts.c_lflag |= ECHO | ICANON;
		tcsetattr(0, TCSANOW, &ts);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	reset_term(); /* a Ctrl-C at the prompt must not leave the terminal silent */
	_exit(0);
}

/* One line from stdin without echo; 1 when nothing (or an empty line) was read. */
static int read_quiet(char *s, size_t len)
{
	struct termios orig, quiet;
	bool tty = tcgetattr(0, &orig) == 0;
	if (tty) {
		quiet = orig;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
		tcsetattr(0, TCSANOW, &quiet);
	}
	memset(s, 0, len);
	char *r = fgets(s, (int)len, stdin);
	if (tty)
		tcsetattr(0, TCSANOW, &orig);
	if (!r)
		return 1;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return n == 0;
}

/* Ask twice. 0, 1 (empty) or 2 (the two differ), with mosquitto_passwd's messages. */
static int get_password(char *out, size_t len)
{
	static char pw1[MAX_PASSWORD], pw2[MAX_PASSWORD];
	int rc = 0;
	printf("Password: ");
	fflush(stdout);
	if (read_quiet(pw1, sizeof pw1)) {
		fprintf(stderr, "Error: Empty password.\n");
		rc = 1;
		goto out;
	}
	printf("\n");
	printf("Reenter password: ");
	fflush(stdout);
	if (read_quiet(pw2, sizeof pw2)) {
		fprintf(stderr, "Error: Empty password.\n");
		rc = 1;
		goto out;
	}
	printf("\n");
	if (strcmp(pw1, pw2) != 0) {
		fprintf(stderr, "Error: Passwords do not match.\n");
		rc = 2;
		goto out;
	}
	snprintf(out, len, "%s", pw1);
out:
	OPENSSL_cleanse(pw1, sizeof pw1);
	OPENSSL_cleanse(pw2, sizeof pw2);
	return rc;
}

/* ---- the file ---- */

static int output_new_password(FILE *f, const char *user, const char *password)
{
	size_t cap = strlen(user) + 256;
	char *line = malloc(cap);
	if (!line) {
		fprintf(stderr, "Error: Out of memory.\n");
		return 1;
	}
	int n = mg_pw_format(line, cap, user, hashtype, iterations, password);
	if (n < 0) {
		free(line);
		fprintf(stderr, "Error: Unable to hash password.\n");
		return 1;
	}
	fputs(line, f);
	free(line);
	return 0;
}

enum { DO_UPDATE_USER, DO_DELETE, DO_UPDATE_FILE };

/* Copy f to tmp line by line, doing `what` for the user (or every line, -U). Returns the
 * exit status. mosquitto_passwd refuses a file with a line it cannot split, and so do we. */
static int rewrite(FILE *f, FILE *tmp, int what, const char *user, const char *password)
{
	char *buf = NULL, *copy = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;
	bool found = false;
	while ((len = getline(&buf, &cap, f)) > 0) {
		lineno++;
		free(copy);
		if (!(copy = strdup(buf))) {
			fprintf(stderr, "Error: Out of memory.\n");
			rc = 1;
			break;
		}
		char *save = NULL;
		char *u = strtok_r(buf, ":", &save);
		char *p = strtok_r(NULL, ":", &save);
		if (u)
			u = mg_pw_trim(u);
		if (p)
			p = mg_pw_trim(p);
		if (!u || !p || !*u || !*p) {
			fprintf(stderr, "Error: Corrupt password file at line %d.\n", lineno);
			rc = 1;
			break;
		}
		if (what == DO_UPDATE_FILE) {
			if ((rc = output_new_password(tmp, u, p)) != 0)
				break;
		} else if (strcmp(u, user) != 0) {
			fputs(copy, tmp);
			if (copy[strlen(copy) - 1] != '\n')
				fputc('\n', tmp); /* a last line without one must not swallow the next */
		} else {
			found = true;
			if (what == DO_UPDATE_USER && (rc = output_new_password(tmp, u, password)) != 0)
				break;
		}
	}
	free(buf);
	free(copy);
	if (rc)
		return rc;
	if (what == DO_DELETE && !found) {
		fprintf(stderr, "Warning: User %s not found in password file.\n", user);
		return 1;
	}
	if (what == DO_UPDATE_USER && !found)
		return output_new_password(tmp, user, password);
	return 0;
}

static int copy_contents(FILE *src, FILE *dst)
{
	char buf[65536];
	rewind(src);
	rewind(dst);
	if (ftruncate(fileno(dst), 0) < 0)
		return 1;
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, src)) > 0)
		if (fwrite(buf, 1, n, dst) != n)
			return 1;
	return ferror(src) ? 1 : fflush(dst) != 0;
}

static bool username_ok(const char *u)
{
	if (!u)
		return true;
	size_t n = strlen(u);
	if (n > 65535) {
		fprintf(stderr, "Error: Username must be less than 65536 characters long.\n");
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (iscntrl((unsigned char)u[i])) {
			fprintf(stderr, "Error: Username must not contain control characters.\n");
			return false;
		}
	if (strchr(u, ':')) {
		fprintf(stderr, "Error: Username must not contain the ':' character.\n");
		return false;
	}
	return true;
}

static int update_existing(const char *path, int what, const char *user, const char *password)
{
	FILE *f = fopen(path, "r+");
	if (!f) {
		fprintf(stderr, "Error: Unable to open password file %s. %s.\n", path, strerror(errno));
		return 1;
	}
	size_t bl = strlen(path) + 5;
	char *backup = malloc(bl);
	if (!backup) {
		fclose(f);
		fprintf(stderr, "Error: Out of memory.\n");
		return 1;
	}
	snprintf(backup, bl, "%s.tmp", path);
	FILE *b = fopen(backup, "w");
	if (!b) {
		fprintf(stderr, "Error creating backup password file \"%s\", not continuing.\n", backup);
		fclose(f);
		free(backup);
		return 1;
	}
	if (copy_contents(f, b)) {
		fprintf(stderr, "Error copying data to backup password file \"%s\", not continuing.\n", backup);
		fclose(b);
		fclose(f);
		free(backup);
		return 1;
	}
	fclose(b);
	rewind(f);
	FILE *tmp = tmpfile(); /* O_TMPFILE or unlinked at once, mode 0600: nobody reads it */
	if (!tmp) {
		fprintf(stderr, "Error: Unable to open temporary file. %s.\n", strerror(errno));
		fclose(f);
		free(backup);
		return 1;
	}
	int rc = rewrite(f, tmp, what, user, password);
	if (rc) {
		fclose(f);
		fclose(tmp);
		unlink(backup);
		free(backup);
		return rc;
	}
	if (copy_contents(tmp, f)) {
		fclose(f);
		fclose(tmp);
		fprintf(stderr, "Error occurred updating password file.\n");
		fprintf(stderr, "Password file may be corrupt, check the backup file: %s.\n", backup);
		free(backup);
		return 1;
	}
	fclose(f);
	fclose(tmp);
	unlink(backup); /* it may hold old passwords: not kept */
	free(backup);
	return 0;
}

int main(int argc, char **argv)
{
	bool batch = false, create = false, del = false, update_file = false;
	static char password[MAX_PASSWORD];
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (argc == 1) {
		usage();
		return 1;
	}
	int idx;
	for (idx = 1; idx < argc; idx++) {
		if (!strcmp(argv[idx], "-H")) {
			if (idx + 1 == argc) {
				fprintf(stderr, "Error: -H argument given but not enough other arguments.\n");
				return 1;
			}
			if (!strcmp(argv[idx + 1], "sha512"))
				hashtype = MG_PW_SHA512;
			else if (!strcmp(argv[idx + 1], "sha512-pbkdf2"))
				hashtype = MG_PW_PBKDF2;
			else {
				fprintf(stderr, "Error: Unknown hash type '%s'\n", argv[idx + 1]);
				return 1;
			}
			idx++;
		} else if (!strcmp(argv[idx], "-b")) {
			batch = true;
		} else if (!strcmp(argv[idx], "-c")) {
			create = true;
		} else if (!strcmp(argv[idx], "-D")) {
			del = true;
		} else if (!strcmp(argv[idx], "-I")) {
			if (idx + 1 == argc) {
				fprintf(stderr, "Error: -I argument given but not enough other arguments.\n");
				return 1;
			}
			long v = strtol(argv[idx + 1], NULL, 10); /* atoi, as mosquitto_passwd */
			iterations = v > INT_MAX ? INT_MAX : (int)v;
			idx++;
			if (iterations < 1) {
				fprintf(stderr, "Error: Number of iterations must be > 0.\n");
				return 1;
			}
		} else if (!strcmp(argv[idx], "-U")) {
			update_file = true;
		} else {
			break;
		}
	}
	if (create && del) {
		fprintf(stderr, "Error: -c and -D cannot be used together.\n");
		return 1;
	}
	if (create && update_file) {
		fprintf(stderr, "Error: -c and -U cannot be used together.\n");
		return 1;
	}
	if (del && update_file) {
		fprintf(stderr, "Error: -D and -U cannot be used together.\n");
		return 1;
	}
	if (del && batch) {
		fprintf(stderr, "Error: -b and -D cannot be used together.\n");
		return 1;
	}
	const char *file = NULL, *user = NULL, *pw = NULL;
	if (create) {
		if (batch ? idx + 2 >= argc : idx + 1 >= argc) {
			fprintf(stderr, batch ? "Error: -c argument given but password file, username, or password missing.\n"
			                      : "Error: -c argument given but password file or username missing.\n");
			return 1;
		}
		file = argv[idx];
		user = argv[idx + 1];
		pw = batch ? argv[idx + 2] : NULL;
	} else if (del) {
		if (idx + 1 >= argc) {
			fprintf(stderr, "Error: -D argument given but password file or username missing.\n");
			return 1;
		}
		file = argv[idx];
		user = argv[idx + 1];
	} else if (update_file) {
		if (idx + 1 != argc) {
			fprintf(stderr, "Error: -U argument given but password file missing.\n");
			return 1;
		}
		file = argv[idx];
	} else if (batch && idx + 3 == argc) {
		file = argv[idx];
		user = argv[idx + 1];
		pw = argv[idx + 2];
	} else if (!batch && idx + 2 == argc) {
		file = argv[idx];
		user = argv[idx + 1];
	} else {
		usage();
		return 1;
	}
	if (!username_ok(user))
		return 1;
	if (pw && strlen(pw) > 65535) {
		fprintf(stderr, "Error: Password must be less than 65536 characters long.\n");
		return 1;
	}
	char *path = realpath(file, NULL);
	if (!path) {
		if (errno != ENOENT) {
			fprintf(stderr, "Error reading password file: %s\n", strerror(errno));
			return 1;
		}
		if (!(path = strdup(file))) {
			fprintf(stderr, "Error: Out of memory.\n");
			return 1;
		}
	}
	int rc;
	if (create) {
		if (!pw) {
			if ((rc = get_password(password, sizeof password)) != 0) {
				free(path);
				return rc;
			}
			pw = password;
		}
		FILE *f = fopen(path, "w");
		if (!f) {
			fprintf(stderr, "Error: Unable to open file %s for writing. %s.\n", path, strerror(errno));
			free(path);
			return 1;
		}
		rc = output_new_password(f, user, pw);
		if (fclose(f) != 0 && !rc) {
			fprintf(stderr, "Error: Unable to write %s. %s.\n", path, strerror(errno));
			rc = 1;
		}
	} else if (del) {
		rc = update_existing(path, DO_DELETE, user, NULL);
	} else if (update_file) {
		rc = update_existing(path, DO_UPDATE_FILE, NULL, NULL);
	} else {
		/* mosquitto_passwd opens the file before it prompts: a typo in the path fails first */
		if (!pw && access(path, R_OK | W_OK) < 0) {
			fprintf(stderr, "Error: Unable to open password file %s. %s.\n", path, strerror(errno));
			free(path);
			return 1;
		}
		if (!pw) {
			if ((rc = get_password(password, sizeof password)) != 0) {
				free(path);
				return rc;
			}
			pw = password;
		}
		rc = update_existing(path, DO_UPDATE_USER, user, pw);
	}
	OPENSSL_cleanse(password, sizeof password);
	free(path);
	return rc;
}
