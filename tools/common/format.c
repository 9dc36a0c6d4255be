/*
 * tools/common/format.c - midge_sub's output: plain, -v and -F, matching mosquitto_sub 2.0's
 * bytes (its quirks included: a field width also truncates the payload, and a hex payload
 * with a width shows width/2 bytes), so scripts that parse its output keep working.
 *
 * -F: %t topic, %p payload, %x/%X payload in hex, %l length, %m message id, %q QoS,
 * %r retain, %I ISO-8601 time, %U Unix time with nanoseconds, %j JSON with the payload as a
 * string, %J JSON with the payload as it is, %% a percent; MQTT 5.0 properties %A topic alias,
 * %C content type, %D correlation data, %E message expiry, %F payload format, %P user
 * properties, %R response topic, %S subscription id. Flags: - (left align), 0 (zero pad),
 * width, .precision. @X is strftime's %X (@N nanoseconds, @@ an @). \n \t \r \a \e \v \0 \\.
 */
#include "tools/common/format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct spec {
	bool left;
	char pad;
	int width;
	int precision; /* -1 none */
} spec;

static int bad(const char *what, char c)
{
	if (c)
		fprintf(stderr, "Error: Invalid %s specifier '%c'.\n", what, c);
	else
		fprintf(stderr, "Error: Incomplete %s specifier.\n", what);
	return 1;
}

int mg_format_check(const char *f)
{
	size_t len = strlen(f);

	for (size_t i = 0; i < len; i++) {
		if (f[i] == '%') {
			if (i == len - 1)
				return bad("format", 0);
			if (f[i + 1] == '0' || f[i + 1] == '-')
				if (++i == len - 1)
					return bad("format", 0);
			while (f[i + 1] >= '0' && f[i + 1] <= '9')
				if (++i == len - 1)
					return bad("format", 0);
			if (f[i + 1] == '.') {
				if (++i == len - 1)
					return bad("format", 0);
				while (f[i + 1] >= '0' && f[i + 1] <= '9')
					if (++i == len - 1)
						return bad("format", 0);
			}
			if (!strchr("%ACDEFIlmPpqRSrtjJUxX", f[i + 1]))
				return bad("format", f[i + 1]);
			i++;
		} else if (f[i] == '@') {
			if (i == len - 1)
				return bad("format", 0);
			i++;
		} else if (f[i] == '\\') {
			if (i == len - 1)
				return bad("escape", 0);
			if (!strchr("\\0aenrtv", f[i + 1]))
				return bad("escape", f[i + 1]);
			i++;
		}
	}
	return 0;
}

/* The payload (hex 0 raw, 1 lower, 2 upper) with mosquitto's width rules. */
static void put_payload(FILE *o, const unsigned char *p, size_t len, int hex, spec s)
{
	long n = (long)len, padlen;

	if (s.width > 0) {
		if (n > s.width)
			n = s.width;
		if (hex) {
			n /= 2;
			padlen = s.width - n * 2;
		} else {
			padlen = s.width - n;
		}
	} else {
		padlen = 0;
	}
	if (!s.left)
		for (long i = 0; i < padlen; i++)
			fputc(s.pad, o);
	if (hex == 0)
		fwrite(p, 1, (size_t)n, o);
	else
		for (long i = 0; i < n; i++)
			fprintf(o, hex == 1 ? "%02x" : "%02X", p[i]);
	if (s.left)
		for (long i = 0; i < padlen; i++)
			fputc(' ', o);
}

static void put_int(FILE *o, long v, spec s)
{
	if (s.width == 0)
		fprintf(o, "%ld", v);
	else if (s.left)
		fprintf(o, "%-*ld", s.width, v);
	else if (s.pad == '0')
		fprintf(o, "%0*ld", s.width, v);
	else
		fprintf(o, "%*ld", s.width, v);
}

static void put_str(FILE *o, const char *v, spec s)
{
	if (s.precision < 0)
		fprintf(o, s.left ? "%-*s" : "%*s", s.width, v);
	else
		fprintf(o, s.left ? "%-*.*s" : "%*.*s", s.width, s.precision, v);
}

static void put_blank(FILE *o, char pad, int width)
{
	for (int i = 0; i < width; i++)
		fputc(pad, o);
}

/* A JSON string, escaped as cJSON escapes it (mosquitto_sub's %j). */
static void put_json_string(FILE *o, const unsigned char *p, size_t len)
{
	fputc('"', o);
	for (size_t i = 0; i < len && p[i]; i++) {
		unsigned char c = p[i];
		switch (c) {
		case '"': fputs("\\\"", o); break;
		case '\\': fputs("\\\\", o); break;
		case '\b': fputs("\\b", o); break;
		case '\f': fputs("\\f", o); break;
		case '\n': fputs("\\n", o); break;
		case '\r': fputs("\\r", o); break;
		case '\t': fputs("\\t", o); break;
		default:
			if (c < 32)
				fprintf(o, "\\u%04x", c);
			else
				fputc(c, o);
		}
	}
	fputc('"', o);
}

static const char *json_names[0x2B] = {
	[0x01] = "payload-format-indicator", [0x02] = "message-expiry-interval",
	[0x03] = "content-type",             [0x08] = "response-topic",
	[0x09] = "correlation-data",         [0x0B] = "subscription-identifier",
	[0x23] = "topic-alias",
};

static void put_json_props(FILE *o, const midge_properties *pr)
{
	static const int ids[] = {0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23};
	bool first = true;
	int nuser = midge_properties_user_count(pr);

	if (midge_properties_count(pr) <= 0)
		return;
	fputs("\"properties\":{", o);
	if (nuser > 0) {
		fputs("\"user-properties\":{", o);
		for (int i = 0; i < nuser; i++) {
			const char *k, *v;
			if (midge_properties_user_at(pr, i, &k, &v) != MIDGE_OK)
				break;
			if (i)
				fputc(',', o);
			put_json_string(o, (const unsigned char *)k, strlen(k));
			fputc(':', o);
			put_json_string(o, (const unsigned char *)v, strlen(v));
		}
		fputc('}', o);
		first = false;
	}
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint32_t n;
		const void *d;
		size_t dl;

		if (!midge_properties_has(pr, ids[i]))
			continue;
		if (!first)
			fputc(',', o);
		first = false;
		fprintf(o, "\"%s\":", json_names[ids[i]]);
		if (midge_properties_get_int(pr, ids[i], &n) == MIDGE_OK)
			fprintf(o, "%lu", (unsigned long)n);
		else if (midge_properties_get_binary(pr, ids[i], &d, &dl) == MIDGE_OK)
			put_json_string(o, d, dl);
		else
			fputs("null", o);
	}
	fputs("},", o);
}

static void put_json(FILE *o, const midge_message *m, const struct timespec *ts,
                     const struct tm *tm, bool escaped)
{
	char buf[64];

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", tm);
	fprintf(o, "{\"tst\":\"%s.%06ldZ", buf, ts->tv_nsec / 1000);
	strftime(buf, sizeof(buf), "%z", tm);
	fprintf(o, "%s\",\"topic\":", buf);
	put_json_string(o, (const unsigned char *)m->topic, strlen(m->topic));
	fprintf(o, ",\"qos\":%d,\"retain\":%d,\"payloadlen\":%zu,", m->qos, m->retain ? 1 : 0,
		m->payloadlen);
	if (m->qos > 0)
		fprintf(o, "\"mid\":%d,", m->mid);
	put_json_props(o, m->properties);
	fputs("\"payload\":", o);
	if (escaped && m->payloadlen)
		put_json_string(o, m->payload, m->payloadlen);
	else if (m->payloadlen)
		fwrite(m->payload, 1, m->payloadlen, o);
	else
		fputs("null", o);
	fputc('}', o);
}

typedef struct clock_now {
	bool have;
	struct timespec ts;
	struct tm tm;
} clock_now;

static void now(clock_now *c)
{
	if (c->have)
		return;
	clock_gettime(CLOCK_REALTIME, &c->ts);
	localtime_r(&c->ts.tv_sec, &c->tm);
	c->have = true;
}

static void put_prop_int(FILE *o, const midge_properties *pr, int id, spec s)
{
	uint32_t n;

	if (midge_properties_get_int(pr, id, &n) == MIDGE_OK)
		put_int(o, (long)n, s);
	else
		put_blank(o, s.pad, s.width);
}

static void put_percent(FILE *o, const midge_message *m, char c, spec s, clock_now *t)
{
	const midge_properties *pr = m->properties;
	const char *str;
	const void *d;
	size_t dl;
	char buf[100];

	switch (c) {
	case '%': fputc('%', o); break;
	case 'A': put_prop_int(o, pr, MIDGE_PROP_TOPIC_ALIAS, s); break;
	case 'E': put_prop_int(o, pr, MIDGE_PROP_MESSAGE_EXPIRY, s); break;
	case 'F': put_prop_int(o, pr, MIDGE_PROP_PAYLOAD_FORMAT, s); break;
	case 'S': put_prop_int(o, pr, MIDGE_PROP_SUBSCRIPTION_ID, s); break;
	case 'C':
		if ((str = midge_properties_get_string(pr, MIDGE_PROP_CONTENT_TYPE)))
			put_str(o, str, s);
		else
			put_blank(o, ' ', s.width);
		break;
	case 'R':
		if ((str = midge_properties_get_string(pr, MIDGE_PROP_RESPONSE_TOPIC)))
			put_str(o, str, s);
		break;
	case 'D':
		if (midge_properties_get_binary(pr, MIDGE_PROP_CORRELATION_DATA, &d, &dl) == MIDGE_OK)
			fwrite(d, 1, dl, o);
		break;
	case 'P':
		for (int i = 0, n = midge_properties_user_count(pr); i < n; i++) {
			const char *k, *v;
			if (midge_properties_user_at(pr, i, &k, &v) != MIDGE_OK)
				break;
			fprintf(o, "%s%s:%s", i ? " " : "", k, v);
		}
		break;
	case 'I':
		now(t);
		if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &t->tm))
			put_str(o, buf, s);
		else
			put_blank(o, ' ', s.width);
		break;
	case 'U':
		now(t);
		fprintf(o, "%lld.%09ld", (long long)t->ts.tv_sec, t->ts.tv_nsec);
		break;
	case 'j':
	case 'J':
		now(t);
		put_json(o, m, &t->ts, &t->tm, c == 'j');
		break;
	case 'l': put_int(o, (long)m->payloadlen, s); break;
	case 'm': put_int(o, m->mid, s); break;
	case 'p': put_payload(o, m->payload, m->payloadlen, 0, s); break;
	case 'x': put_payload(o, m->payload, m->payloadlen, 1, s); break;
	case 'X': put_payload(o, m->payload, m->payloadlen, 2, s); break;
	case 'q': fputc('0' + m->qos, o); break;
	case 'r': fputc(m->retain ? '1' : '0', o); break;
	case 't': put_str(o, m->topic, s); break;
	}
}

static void put_escape(FILE *o, char c)
{
	static const char from[] = "\\0aenrtv";
	static const char to[] = "\\\0\a\033\n\r\t\v";
	const char *p = strchr(from, c);

	if (p && c)
		fputc(to[p - from], o);
}

static void formatted(FILE *o, const midge_message *m, const char *f)
{
	size_t len = strlen(f);
	clock_now t = {0};

	for (size_t i = 0; i < len; i++) {
		if (f[i] == '%' && i + 1 < len) {
			spec s = {false, ' ', 0, -1};
			i++;
			if (f[i] == '-') {
				s.left = true;
				if (i < len - 1)
					i++;
			}
			if (f[i] == '0') {
				s.pad = '0';
				if (i < len - 1)
					i++;
			}
			while (i < len - 1 && f[i] >= '0' && f[i] <= '9')
				s.width = s.width * 10 + (f[i++] - '0');
			if (f[i] == '.' && i < len - 1) {
				s.precision = 0;
				i++;
				while (i < len - 1 && f[i] >= '0' && f[i] <= '9')
					s.precision = s.precision * 10 + (f[i++] - '0');
			}
			put_percent(o, m, f[i], s, &t);
		} else if (f[i] == '@' && i + 1 < len) {
			char sf[3] = {'%', f[++i], 0}, buf[100];
			if (f[i] == '@') {
				fputc('@', o);
				continue;
			}
			now(&t);
			if (f[i] == 'N')
				fprintf(o, "%09ld", t.ts.tv_nsec);
			else if (strftime(buf, sizeof(buf), sf, &t.tm))
				fputs(buf, o);
		} else if (f[i] == '\\' && i + 1 < len) {
			put_escape(o, f[++i]);
		} else if (f[i] != '%' && f[i] != '@' && f[i] != '\\') {
			fputc(f[i], o);
		}
	}
}

void mg_print_message(FILE *o, const midge_message *m, const char *format, bool verbose, bool eol)
{
	if (format) {
		formatted(o, m, format);
		if (eol)
			fputc('\n', o);
	} else if (verbose) {
		if (m->payloadlen) {
			fprintf(o, "%s ", m->topic);
			fwrite(m->payload, 1, m->payloadlen, o);
			if (eol)
				fputc('\n', o);
		} else if (eol) {
			fprintf(o, "%s (null)\n", m->topic);
		}
	} else if (m->payloadlen) {
		fwrite(m->payload, 1, m->payloadlen, o);
		if (eol)
			fputc('\n', o);
	}
	fflush(o);
}
