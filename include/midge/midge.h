/*
 * <midge/midge.h> - libmidge, an MQTT 3.1 / 3.1.1 / 5.0 client library with paho's names.
 *
 * A paho-mqtt (Python) program translates line by line:
 *
 *     client = mqtt.Client("id", clean_session=True, userdata=None, protocol=mqtt.MQTTv311)
 *     client.on_message = on_message
 *     client.connect("localhost", 1883, 60)
 *     client.subscribe("room/temp", 1)
 *     client.loop_forever()
 *
 *     midge_client *c = midge_client_new("id", true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
 *     midge_on_message_set(c, on_message);
 *     midge_connect(c, "localhost", 1883, 60);
 *     midge_subscribe(c, "room/temp", 1);
 *     midge_loop_forever(c);
 *     midge_client_free(c);
 *
 * Link with `pkg-config --cflags --libs midge` (static: libmidge.a plus -lpthread).
 *
 * Conventions
 *   - Functions that can fail return an int: MIDGE_OK (0) or a negative MIDGE_ERR_* code
 *     (midge_strerror names it). Functions that hand out a message id (publish, subscribe,
 *     unsubscribe) return the id (> 0) or a negative error.
 *   - MQTT reason codes (CONNACK return codes 1..5 in 3.1/3.1.1, 5.0 reason codes) are
 *     non-negative and never confused with errors; midge_connack_string / midge_reason_string
 *     name them.
 *   - Strings and buffers passed in are copied (the caller may free them when the call returns),
 *     except where a comment says "borrows".
 *   - Threads: midge_publish, midge_subscribe(_ex), midge_unsubscribe(_ex), midge_disconnect(_ex),
 *     midge_wait_for_publish and midge_is_connected may be called from any thread while
 *     midge_loop_start's thread runs. Every other call belongs to one thread at a time.
 *     Callbacks run, with no lock held, in the thread that runs the loop at that moment: the
 *     midge_loop_start thread while it runs; otherwise the caller of midge_loop,
 *     midge_loop_forever or midge_loop_read / _write / _misc, or of midge_connect,
 *     midge_reconnect, midge_wait_for_publish and midge_disconnect, which run the loop
 *     themselves when no loop thread runs. The one exception is on_log: a "sending ..." line
 *     is made by the thread that called the function that sends (midge_on_log_set).
 *     A callback may call any of the thread-safe functions above (a callback must not call
 *     midge_loop_stop or midge_client_free).
 */
#ifndef MIDGE_H
#define MIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIDGE_VERSION_MAJOR 0
#define MIDGE_VERSION_MINOR 1
#define MIDGE_VERSION_REVISION 0

/* The library's version; any pointer may be NULL. Returns MAJOR*1000000+MINOR*1000+REVISION.
 * (libmosquitto: mosquitto_lib_version) */
int midge_lib_version(int *major, int *minor, int *revision);

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */

typedef struct midge_client midge_client;

/* MQTT 5.0 properties: build them to send (midge_properties_new + setters), read them in the
 * callbacks (getters). In 3.1/3.1.1 callbacks get NULL; every getter accepts NULL. */
typedef struct midge_properties midge_properties;

/* A received message, given to on_message. Borrowed: valid only during the callback (copy what
 * you keep). payload is followed by a '\0' that payloadlen does not count, so a text payload can
 * be printed as a C string. properties is NULL unless the connection is MQTT 5.0.
 * (paho: MQTTMessage .mid .topic .payload .qos .retain .dup .properties) */
typedef struct midge_message {
	int mid;
	const char *topic;
	const void *payload;
	size_t payloadlen;
	int qos;
	bool retain;
	bool dup;
	const midge_properties *properties;
} midge_message;

/* Protocol versions (paho: MQTTv31, MQTTv311, MQTTv5) */
enum { MIDGE_PROTOCOL_V31 = 3, MIDGE_PROTOCOL_V311 = 4, MIDGE_PROTOCOL_V5 = 5 };

/* Transports (paho: transport="tcp" / "websockets"). WebSockets: MQTT in binary frames of
 * RFC 6455 after an HTTP/1.1 upgrade to GET /mqtt (midge_ws_set_options), over TLS too. */
enum { MIDGE_TRANSPORT_TCP = 0, MIDGE_TRANSPORT_WEBSOCKETS = 1 };

/* Errors: negative. (paho: MQTT_ERR_*) */
enum {
	MIDGE_OK = 0,
	MIDGE_ERR_INVAL = -1,          /* an argument is invalid (NULL, QoS 3, bad keepalive, ...) */
	MIDGE_ERR_NOMEM = -2,          /* out of memory */
	MIDGE_ERR_NO_CONN = -3,        /* not connected (and not connecting) */
	MIDGE_ERR_CONN_REFUSED = -4,   /* the broker refused the connection (CONNACK reason >0) */
	MIDGE_ERR_CONN_LOST = -5,      /* the connection was lost (peer closed, reset) */
	MIDGE_ERR_PROTOCOL = -6,       /* the broker broke the protocol (malformed packet, ...) */
	MIDGE_ERR_PAYLOAD_SIZE = -7,   /* payload / packet too large for MQTT (268435455 bytes) */
	MIDGE_ERR_QUEUE_FULL = -8,     /* the outbound queue holds max_queued_messages already */
	MIDGE_ERR_TIMEOUT = -9,        /* a wait ran out of time */
	MIDGE_ERR_ERRNO = -10,         /* a system call failed: see errno */
	MIDGE_ERR_NOT_FOUND = -11,     /* no such property / message id */
	MIDGE_ERR_TLS = -12,           /* TLS failure */
	MIDGE_ERR_NOT_SUPPORTED = -13, /* not supported (here, or in this protocol version) */
	MIDGE_ERR_TOPIC = -14,         /* invalid topic name (publish) or topic filter (subscribe) */
	MIDGE_ERR_UTF8 = -15,          /* a string is not valid MQTT UTF-8 */
	MIDGE_ERR_LOOKUP = -16,        /* the host name could not be resolved */
	MIDGE_ERR_KEEPALIVE = -17,     /* no answer from the broker within the keepalive */
	MIDGE_ERR_PROPERTY = -18,      /* a property is not allowed in this packet / version */
	MIDGE_ERR_BUSY = -19,          /* already connected / connecting, or a loop thread runs */
	MIDGE_ERR_OVERSIZE_PACKET = -20, /* the packet is larger than the broker's Maximum Packet
	                                  Size (5.0 CONNACK) (libmosquitto: MOSQ_ERR_OVERSIZE_PACKET) */
	MIDGE_ERR_PROXY = -21          /* the SOCKS5 proxy refused (authentication, or it could not
	                                  reach the broker) or broke its protocol */
};

/* One line of English for a MIDGE_ERR_* code. (paho: error_string) */
const char *midge_strerror(int err);

/* Name of a CONNACK code: 3.1/3.1.1 return codes 0..5 ("Connection Accepted.",
 * "Connection Refused: not authorised.", ...) and 5.0 reason codes >= 0x80 ("Not authorized",
 * ...). A negative value is passed to midge_strerror. (paho: connack_string) */
const char *midge_connack_string(int reason_code);

/* Name of an MQTT 5.0 reason code as in the spec ("Success", "No matching subscribers",
 * "Quota exceeded", ...); a negative value is passed to midge_strerror. (paho: ReasonCode) */
const char *midge_reason_string(int reason_code);

/* Log levels of on_log (paho: MQTT_LOG_*; same values as libmosquitto's MOSQ_LOG_*). */
enum {
	MIDGE_LOG_INFO = 0x01,
	MIDGE_LOG_NOTICE = 0x02,
	MIDGE_LOG_WARNING = 0x04,
	MIDGE_LOG_ERR = 0x08,
	MIDGE_LOG_DEBUG = 0x10
};

/* on_connect flags (paho: flags["session present"] / ConnectFlags.session_present) */
#define MIDGE_CONNECT_FLAG_SESSION_PRESENT 0x01
/* on_disconnect flags (paho: DisconnectFlags.is_disconnect_packet_from_server) */
#define MIDGE_DISCONNECT_FLAG_FROM_SERVER 0x01

/* Subscription options for midge_subscribe_ex: the QoS (0..2) or-ed with these; they are the
 * bits of the MQTT 5.0 options byte. In 3.1/3.1.1 only the QoS is sent.
 * (paho: SubscribeOptions(qos, noLocal, retainAsPublished, retainHandling)) */
#define MIDGE_SUB_NO_LOCAL 0x04
#define MIDGE_SUB_RETAIN_AS_PUBLISHED 0x08
#define MIDGE_SUB_RETAIN_HANDLING(n) (((n) & 3) << 4) /* 0 send, 1 send if new, 2 do not send */

/* ------------------------------------------------------------------------------------------ */
/* The client object                                                                           */

/* Create a client. (paho: Client(client_id, clean_session, userdata, protocol, transport))
 *   client_id      copied. NULL or "" lets the broker assign one (3.1.1 and 5.0; 3.1.1 needs
 *                  clean_session true). For 3.1, which needs an id, a random "midge-..." id is made.
 *   clean_session  3.1/3.1.1: the clean session flag of every CONNECT. 5.0: the Clean Start
 *                  flag used by midge_connect (midge_connect_ex sets it explicitly); keeping a
 *                  5.0 session also needs a Session Expiry Interval property on connect.
 *   userdata       handed to every callback (borrowed).
 *   protocol       MIDGE_PROTOCOL_V31, _V311 or _V5.
 *   transport      MIDGE_TRANSPORT_TCP or MIDGE_TRANSPORT_WEBSOCKETS.
 * Returns NULL on a bad argument or out of memory. */
midge_client *midge_client_new(const char *client_id, bool clean_session, void *userdata,
                               int protocol, int transport);

/* Free the client: stops the loop thread if one runs (midge_loop_stop), closes the socket
 * without sending DISCONNECT (call midge_disconnect first for a clean end), frees everything.
 * NULL is allowed. Not from a callback. */
void midge_client_free(midge_client *c);

/* Replace the userdata handed to callbacks. (paho: user_data_set) */
void midge_user_data_set(midge_client *c, void *userdata);
void *midge_user_data(midge_client *c);

/* The client identifier in use: the one given, or after a 5.0 CONNACK the one the broker
 * assigned; NULL if none yet. Borrowed, valid until the next connect. */
const char *midge_client_id(midge_client *c);

/* Username and password for the next CONNECT; NULL username clears both. password may be NULL.
 * MIDGE_ERR_INVAL for one longer than 65535 bytes, MIDGE_ERR_UTF8 for a username that is not
 * valid UTF-8. (paho: username_pw_set) */
int midge_username_pw_set(midge_client *c, const char *username, const char *password);

/* The will (last will and testament) for the next CONNECT; topic is a topic name (no wildcards),
 * payload may be NULL with len 0; props (5.0: will delay, message expiry, content type, ...)
 * are copied and may be NULL. (paho: will_set(topic, payload, qos, retain, properties)) */
int midge_will_set(midge_client *c, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, const midge_properties *props);
/* Forget the will. (paho: will_clear) */
int midge_will_clear(midge_client *c);

/* Backoff between automatic reconnects (loop_forever, loop_start): starts at min_delay_s,
 * doubles after each failure up to max_delay_s. Default 1 and 120. (paho: reconnect_delay_set) */
int midge_reconnect_delay_set(midge_client *c, int min_delay_s, int max_delay_s);

/* How many QoS 1/2 messages may be in flight (sent, not yet acknowledged); the others wait in
 * the queue. 0 = no limit; default 20. In 5.0 the broker's Receive Maximum also applies.
 * (paho: max_inflight_messages_set) */
int midge_max_inflight_messages_set(midge_client *c, int n);

/* Bound of the outbound queue: messages waiting for the inflight window or for a connection
 * (published while disconnected). 0 = no limit, bounded only by memory; the default is 0, as
 * in paho, so a burst published faster than the broker acknowledges waits instead of failing
 * (a waiting message costs its copy and about 100 bytes, and holds no packet id).
 * midge_publish returns MIDGE_ERR_QUEUE_FULL beyond a bound. (paho: max_queued_messages_set) */
int midge_max_queued_messages_set(midge_client *c, int n);

/* How long midge_connect / midge_reconnect wait for the TCP connection and CONNACK, in
 * milliseconds (default 10000). (paho: connect_timeout) */
int midge_connect_timeout_set(midge_client *c, int timeout_ms);

/* ------------------------------------------------------------------------------------------ */
/* Connecting                                                                                  */

/* Connect and wait for the CONNACK. host: a name or an IPv4/IPv6 address; port 1..65535
 * (1883 is MQTT's); keepalive in seconds, 0..65535 (0 = no keepalive, paho's default is 60).
 * Returns
 *     MIDGE_OK (0)   accepted: on_connect has been called (here, or in the loop thread)
 *     > 0            refused: the CONNACK code (3.1.1: 1..5; 5.0: a reason code >= 0x80)
 *     < 0            MIDGE_ERR_* (MIDGE_ERR_ERRNO with errno = ECONNREFUSED when nothing listens,
 *                    MIDGE_ERR_LOOKUP, MIDGE_ERR_TIMEOUT, ...)
 * If no loop thread runs, this call runs the loop itself until the CONNACK, so on_connect is
 * called from inside midge_connect. (paho: connect(host, port, keepalive)) */
int midge_connect(midge_client *c, const char *host, int port, int keepalive);

/* midge_connect with the 5.0 Clean Start flag and CONNECT properties (session expiry, receive
 * maximum, maximum packet size, topic alias maximum, user properties, ...; copied, may be NULL).
 * For 3.1/3.1.1 clean_start is the clean session flag and props must be NULL or empty.
 * (paho: connect(host, port, keepalive, clean_start=..., properties=...)) */
int midge_connect_ex(midge_client *c, const char *host, int port, int keepalive, bool clean_start,
                     const midge_properties *props);

/* Start connecting and return at once; the loop completes the connection and calls on_connect,
 * or on_connect_fail. The name is resolved here, blocking for as long as DNS takes (paho blocks
 * its loop thread on it instead): give an address where a slow DNS must not stall the caller.
 * The reconnects of loop_forever / loop_start resolve in a helper thread, and
 * midge_disconnect or midge_loop_stop end a slow lookup's wait at once. (paho: connect_async) */
int midge_connect_async(midge_client *c, const char *host, int port, int keepalive);
int midge_connect_async_ex(midge_client *c, const char *host, int port, int keepalive,
                           bool clean_start, const midge_properties *props);

/* Connect again with the last host, port, keepalive and properties; waits for the CONNACK like
 * midge_connect (same returns). Messages in flight are resent (DUP) when the session is
 * present. (paho: reconnect) */
int midge_reconnect(midge_client *c);

/* Send DISCONNECT (reason 0, "Normal disconnection") and close. Stops loop_forever and the
 * loop_start thread's reconnecting; on_disconnect is called with reason_code 0. From then on no
 * incoming packet is handled (no more callbacks for it), even one already read with the packet
 * whose callback called midge_disconnect, as in libmosquitto. (paho: disconnect())
 * Not connected: while a running loop_forever / loop_start thread waits to reconnect, that is
 * stopped (MIDGE_OK); otherwise MIDGE_ERR_NO_CONN and nothing changes, so a later
 * midge_loop_forever still reconnects. */
int midge_disconnect(midge_client *c);
/* 5.0: with a reason code (0 normal, 4 "Disconnect with Will Message", ...) and properties
 * (session expiry, reason string, user properties). (paho: disconnect(reasoncode, properties)) */
int midge_disconnect_ex(midge_client *c, int reason_code, const midge_properties *props);

/* true between an accepted CONNACK and the end of that connection. (paho: is_connected) */
bool midge_is_connected(midge_client *c);

/* ------------------------------------------------------------------------------------------ */
/* Publish and subscribe                                                                       */

/* Publish a message. topic: a topic name (no '+' or '#', not empty unless a 5.0 Topic Alias
 * property is given); payload is copied (NULL allowed when len is 0); qos 0..2; props: 5.0
 * PUBLISH properties (payload format, message expiry, topic alias, response topic,
 * correlation data, user properties, content type) or NULL.
 * Returns the message id (> 0, for QoS 0 too, as paho) or a negative error. The message is
 * sent now if the inflight window allows, otherwise (or while disconnected) queued.
 * on_publish reports the end: QoS 0 written to the socket, QoS 1 PUBACK, QoS 2 PUBCOMP.
 * Message ids are handles, not MQTT packet ids: 1..INT_MAX from one sequence shared with
 * midge_subscribe / _unsubscribe; an id is handed out again only after 2^31-1 others and
 * never while its on_publish (on_subscribe, on_unsubscribe) is still to come. The packet id
 * is taken when the message goes in flight (it shows in the "sending PUBLISH (... m<id>"
 * log line and often equals the mid).
 * MIDGE_ERR_OVERSIZE_PACKET: the PUBLISH is larger than the broker's Maximum Packet Size
 * (5.0 CONNACK, the last one received). A message queued before the CONNACK that told the
 * limit is dropped when it would go out: on_publish gets reason 0x95 "Packet too large" and
 * midge_wait_for_publish returns MIDGE_ERR_OVERSIZE_PACKET.
 * (paho: publish(topic, payload, qos, retain, properties) -> MQTTMessageInfo.mid) */
int midge_publish(midge_client *c, const char *topic, const void *payload, size_t len, int qos,
                  bool retain, const midge_properties *props);

/* Wait until the message mid has been sent (QoS 0) or acknowledged (QoS 1/2), at most
 * timeout_ms (< 0: no limit). Runs the loop itself if no loop thread runs. Returns MIDGE_OK,
 * MIDGE_ERR_TIMEOUT, an error if the connection is lost meanwhile, or the error that dropped
 * the message unsent (MIDGE_ERR_OVERSIZE_PACKET; the last 1024 such drops are remembered).
 * When it returns MIDGE_OK, on_publish for mid has returned (also when midge_loop_start's
 * thread makes it), as in paho. (paho: MQTTMessageInfo.wait_for_publish(timeout)) */
int midge_wait_for_publish(midge_client *c, int mid, int timeout_ms);
/* Has the message mid been completed (or is it unknown)? false while it is pending and for one
 * dropped unsent (see midge_wait_for_publish). (paho: MQTTMessageInfo.is_published) */
bool midge_is_published(midge_client *c, int mid);

/* Subscribe to one topic filter at QoS 0..2. Returns the message id (> 0) of the SUBSCRIBE;
 * on_subscribe reports the granted QoS. (paho: subscribe(topic, qos)) */
int midge_subscribe(midge_client *c, const char *topic, int qos);

/* Subscribe to count filters in one SUBSCRIBE. options[i] is the QoS or-ed with MIDGE_SUB_*
 * (5.0 only; in 3.x only the QoS is sent and the other bits are left out, as paho does). props: 5.0 SUBSCRIBE properties (subscription
 * identifier, user properties) or NULL. Returns the message id or an error.
 * (paho: subscribe([(topic, SubscribeOptions), ...], properties=...)) */
int midge_subscribe_ex(midge_client *c, const char *const *topics, const int *options, int count,
                       const midge_properties *props);

/* Unsubscribe from one / count filters. Returns the message id or an error; on_unsubscribe
 * reports the result. (paho: unsubscribe(topic | [topics], properties)) */
int midge_unsubscribe(midge_client *c, const char *topic);
int midge_unsubscribe_ex(midge_client *c, const char *const *topics, int count,
                         const midge_properties *props);

/* ------------------------------------------------------------------------------------------ */
/* The loop                                                                                    */

/* Wait up to timeout_ms for the socket (< 0: 1000 ms), then read, handle and write what is
 * ready, and send PINGREQ when due. Returns MIDGE_OK, MIDGE_ERR_NO_CONN when not connected, or
 * the error that ended the connection (on_disconnect has been called). Does not reconnect.
 * (paho: loop(timeout)) */
int midge_loop(midge_client *c, int timeout_ms);

/* Run the loop until midge_disconnect is called (from a callback or another thread),
 * reconnecting with backoff (midge_reconnect_delay_set) after a lost connection, and after a
 * failed midge_connect_async. Returns MIDGE_OK after midge_disconnect; MIDGE_ERR_NO_CONN if
 * connect was never called; MIDGE_ERR_CONN_REFUSED when the broker refuses a (re)connect in
 * its CONNACK; the error of a failed midge_connect (which is not retried).
 * In 5.0 these reconnects send Clean Start 0 once a connection has been accepted (paho's
 * MQTT_CLEAN_START_FIRST_ONLY), so a session kept by a Session Expiry Interval survives.
 * (paho: loop_forever()) */
int midge_loop_forever(midge_client *c);

/* Run midge_loop_forever in a new thread; callbacks then run in that thread. Call before or
 * after connect / connect_async. The thread reconnects like loop_forever, and after a
 * disconnect waits for the next connect until midge_loop_stop. MIDGE_ERR_BUSY if a loop
 * thread runs already. (paho: loop_start) */
int midge_loop_start(midge_client *c);

/* Stop and join the loop thread. It does not disconnect: call midge_disconnect first for a
 * clean end (a DISCONNECT already queued is sent before the thread ends). Not from a callback.
 * MIDGE_ERR_INVAL if no loop thread runs. (paho: loop_stop) */
int midge_loop_stop(midge_client *c);

/* For programs with their own event loop (paho: socket, want_write, loop_read, loop_write,
 * loop_misc): poll midge_socket for reading, and for writing when midge_want_write; call
 * loop_read / loop_write when ready and loop_misc about once a second (PINGREQ, timeouts). */
int midge_socket(midge_client *c);          /* the fd, or -1 when not connected */
bool midge_want_write(midge_client *c);
int midge_loop_read(midge_client *c);       /* MIDGE_OK or the error that closed the connection */
int midge_loop_write(midge_client *c);
int midge_loop_misc(midge_client *c);

/* ------------------------------------------------------------------------------------------ */
/* Callbacks (paho: client.on_connect = ..., etc.). NULL removes one. Each gets the client and
 * the userdata; properties are NULL in 3.1/3.1.1 and borrowed for the callback's duration.  */

/* CONNACK arrived. flags: MIDGE_CONNECT_FLAG_SESSION_PRESENT. reason_code: 0 accepted,
 * else the refusal (3.1.1: 1..5, 5.0: >= 0x80; name it with midge_connack_string).
 * props: the CONNACK's (assigned client id, receive maximum, maximum packet size, ...). */
void midge_on_connect_set(midge_client *c, void (*cb)(midge_client *c, void *userdata, int flags,
                                                      int reason_code,
                                                      const midge_properties *props));

/* connect_async / automatic reconnect failed before any CONNACK (DNS, TCP, timeout): err is a
 * MIDGE_ERR_*. (paho: on_connect_fail) */
void midge_on_connect_fail_set(midge_client *c, void (*cb)(midge_client *c, void *userdata,
                                                           int err));

/* A message arrived: QoS 0 and 1 when their PUBLISH arrives; QoS 2 once, when its PUBREL
 * arrives (after PUBREC; the PUBCOMP is queued first), as paho and libmosquitto do. Until then
 * the library holds the message; in 5.0 more held at once than the Receive Maximum given to
 * midge_connect_ex (default 65535) ends the connection with DISCONNECT 0x93. */
void midge_on_message_set(midge_client *c, void (*cb)(midge_client *c, void *userdata,
                                                      const midge_message *msg));

/* A publish completed: QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP (or a PUBREC with a
 * failure reason >= 0x80). reason_code: the 5.0 reason code (0 in 3.x). */
void midge_on_publish_set(midge_client *c, void (*cb)(midge_client *c, void *userdata, int mid,
                                                      int reason_code,
                                                      const midge_properties *props));

/* SUBACK arrived: count codes, one per filter: the granted QoS 0..2, or >= 0x80 on failure
 * (3.1.1: 0x80; 5.0: the reason code). */
void midge_on_subscribe_set(midge_client *c, void (*cb)(midge_client *c, void *userdata, int mid,
                                                        int count, const int *granted,
                                                        const midge_properties *props));

/* UNSUBACK arrived: in 5.0 one reason code per filter; in 3.x count is 0 and reason_codes NULL. */
void midge_on_unsubscribe_set(midge_client *c, void (*cb)(midge_client *c, void *userdata,
                                                          int mid, int count,
                                                          const int *reason_codes,
                                                          const midge_properties *props));

/* The connection ended. reason_code: 0 after midge_disconnect; the broker's DISCONNECT reason
 * code (5.0) with flags MIDGE_DISCONNECT_FLAG_FROM_SERVER; or a negative MIDGE_ERR_* when the
 * connection was lost (MIDGE_ERR_CONN_LOST, MIDGE_ERR_KEEPALIVE, MIDGE_ERR_PROTOCOL, ...). */
void midge_on_disconnect_set(midge_client *c, void (*cb)(midge_client *c, void *userdata,
                                                         int flags, int reason_code,
                                                         const midge_properties *props));

/* Log lines. At MIDGE_LOG_DEBUG the library writes what libmosquitto writes, word for word:
 * "Client (null) sending CONNECT", "Client x received CONNACK (0)",
 * "Client x sending PUBLISH (d0, q1, r0, m1, 'temp', ... (4 bytes))",
 * "Client x received PUBACK (Mid: 1, RC:0)", "Client x sending SUBSCRIBE (Mid: 1, Topic: temp,
 * QoS: 0, Options: 0x00)", "Client x received SUBACK", "Client x sending PINGREQ", ...
 * Only MIDGE_LOG_DEBUG lines copy libmosquitto; other levels are midge's own words.
 * A "sending ..." line is made by the thread that called the function that sends (e.g.
 * midge_publish from the main thread while loop_start runs), so on_log may run in that thread.
 * Lines come in the order of what they describe, across threads too: a "sending X" line before
 * the bytes of X are written (the loop thread waits for it), so before any answer to X; a
 * "received X" line before the callbacks X causes, and those before the next packet is handled.
 * line is borrowed and has no newline. (paho: on_log(client, userdata, level, buf)) */
void midge_on_log_set(midge_client *c, void (*cb)(midge_client *c, void *userdata, int level,
                                                  const char *line));

/* ------------------------------------------------------------------------------------------ */
/* What paho and libmosquitto users reach for (issue 8): topic matching, per-topic callbacks,  */
/* message copies, local address, SOCKS5, manual acks, socket callbacks. (Section kept apart   */
/* so additions elsewhere in this header merge without conflicts.)                              */

/* Does the topic name match the subscription filter ('+', '#', "a/#" matches "a", a leading
 * wildcard does not match a '$' topic)? For "$share/group/filter" the filter after the group
 * is matched. Returns MIDGE_OK with *result set, MIDGE_ERR_INVAL for a NULL argument,
 * MIDGE_ERR_TOPIC if sub is not a valid filter or topic not a valid topic name (wildcards,
 * empty, bad UTF-8). (paho: topic_matches_sub; libmosquitto: mosquitto_topic_matches_sub) */
int midge_topic_matches_sub(const char *sub, const char *topic, bool *result);

/* Per-topic message callbacks: a message whose topic matches sub (a filter, wildcards allowed)
 * goes to cb instead of on_message; when several filters match, each callback gets it once, in
 * the order they were added; on_message gets only messages no filter matches (paho's rule).
 * Adding a filter again replaces its callback. The callback has on_message's signature and
 * rules. Returns MIDGE_OK, MIDGE_ERR_INVAL, MIDGE_ERR_TOPIC (bad filter), MIDGE_ERR_NOMEM.
 * Thread-safe like midge_publish. (paho: message_callback_add(sub, callback);
 * libmosquitto: mosquitto_message_callback_set with a topic check of your own) */
int midge_message_callback_add(midge_client *c, const char *sub,
                               void (*cb)(midge_client *c, void *userdata,
                                          const midge_message *msg));
/* Remove the callback of exactly this filter: MIDGE_OK or MIDGE_ERR_NOT_FOUND.
 * (paho: message_callback_remove(sub)) */
int midge_message_callback_remove(midge_client *c, const char *sub);

/* A message of on_message is borrowed for the callback; keep one with a copy: topic, payload
 * (with its '\0') and properties are copied, all owned by the copy. NULL when out of memory.
 * Free it with midge_message_free (NULL allowed). (libmosquitto: mosquitto_message_copy /
 * mosquitto_message_free) */
midge_message *midge_message_copy(const midge_message *src);
void midge_message_free(midge_message *msg);

/* One property, as midge_properties_next hands it out (borrowed from the list). */
typedef struct midge_property {
	int id;                 /* MIDGE_PROP_* */
	uint32_t value;         /* byte, two-byte, four-byte and variable integers */
	const void *data;       /* string or binary value, user property name; NULL otherwise */
	size_t len;             /* (strings are also '\0'-terminated) */
	const char *pair_value; /* user property value ('\0'-terminated); NULL otherwise */
	size_t pair_value_len;
} midge_property;

/* Walk every property in order, user properties and repeated ids included:
 *     int pos = 0; midge_property pr;
 *     while (midge_properties_next(props, &pos, &pr)) ...
 * Returns false after the last (and for p NULL). (paho: iterating Properties;
 * libmosquitto: mosquitto_property_next) */
bool midge_properties_next(const midge_properties *p, int *pos, midge_property *out);

/* midge_connect / midge_connect_async from a given local address (an address or a name,
 * resolved here), e.g. to pick the interface; it stays for later (re)connects of this client
 * until a connect_bind with NULL. An address of no family of the broker's addresses, or one
 * not on this host, fails the connect (MIDGE_ERR_ERRNO, errno EADDRNOTAVAIL / EAFNOSUPPORT).
 * (paho: connect(..., bind_address=); libmosquitto: mosquitto_connect_bind) */
int midge_connect_bind(midge_client *c, const char *host, int port, int keepalive,
                       const char *bind_address);
int midge_connect_bind_async(midge_client *c, const char *host, int port, int keepalive,
                             const char *bind_address);

/* Manual acknowledgements: with on, the PUBACK of a received QoS 1 message and the PUBCOMP of
 * a QoS 2 message (delivered at its PUBREL) are not sent when on_message returns; the program
 * sends them with midge_ack(c, msg->mid, msg->qos) once it has dealt with the message, from
 * any thread. Until then the broker counts the message in flight and, with a kept session,
 * sends it again after a reconnect. QoS 0 needs no ack. Default off.
 * (paho 2: manual_ack_set(True) / ack(mid, qos)) */
int midge_manual_ack_set(midge_client *c, bool on);
/* MIDGE_OK, MIDGE_ERR_NO_CONN (the connection it came on is gone), MIDGE_ERR_INVAL. */
int midge_ack(midge_client *c, int mid, int qos);

/* Socket callbacks for a program with its own event loop (epoll, libuv, a GUI toolkit), so it
 * need not ask midge_socket / midge_want_write after every call: it is told
 *   on_socket_open(fd)             a socket exists: watch it for reading (midge_loop_read)
 *   on_socket_register_write(fd)   output is waiting (or a TCP connect is in progress): watch
 *                                  it for writing too (midge_loop_write)
 *   on_socket_unregister_write(fd) output is out: stop watching for writing
 *   on_socket_close(fd)            the socket is closed (already: the number may be reused
 *                                  by the next open); stop watching it
 * Call midge_loop_misc about once a second. Each change is told once, in order, from the
 * thread whose call caused it (as any callback: without a lock held); setting a callback while
 * a socket is open tells of it at once. An unregister_write always comes before the close.
 * (paho: on_socket_open, on_socket_close, on_socket_register_write,
 * on_socket_unregister_write) */
void midge_on_socket_open_set(midge_client *c, void (*cb)(midge_client *c, void *userdata,
                                                          int fd));
void midge_on_socket_close_set(midge_client *c, void (*cb)(midge_client *c, void *userdata,
                                                           int fd));
void midge_on_socket_register_write_set(midge_client *c,
                                        void (*cb)(midge_client *c, void *userdata, int fd));
void midge_on_socket_unregister_write_set(midge_client *c,
                                          void (*cb)(midge_client *c, void *userdata, int fd));

/* Proxy types of midge_proxy_set (PySocks' values, which paho's proxy_set takes). */
#define MIDGE_PROXY_SOCKS5 2

/* Reach the broker through a SOCKS5 proxy (RFC 1928) from the next connect on: host and port
 * are the proxy's; username / password (RFC 1929, at most 255 bytes each) when it asks for
 * them, else NULL. The broker's host name goes to the proxy unresolved (paho's
 * proxy_rdns=True), an address literal as an address. A proxy that refuses makes the connect
 * fail with MIDGE_ERR_PROXY (on_connect_fail for connect_async). host NULL: no proxy.
 * MIDGE_ERR_NOT_SUPPORTED for a type other than MIDGE_PROXY_SOCKS5.
 * (paho: proxy_set(proxy_type=socks.SOCKS5, proxy_addr, proxy_port, proxy_rdns=True,
 * proxy_username, proxy_password); libmosquitto: mosquitto_socks5_set) */
int midge_proxy_set(midge_client *c, int type, const char *host, int port,
                    const char *username, const char *password);

/* MIDGE_TRANSPORT_WEBSOCKETS: the path of the upgrade request (NULL: "/mqtt", paho's default;
 * it must start with '/') and extra header lines sent with it, "Name: value" each ended by
 * "\r\n" or "\n" (e.g. "Authorization: Bearer x\n"), or NULL. Takes effect at the next
 * connect. The request also carries Host (host:port of the connect), Upgrade, Connection,
 * Sec-WebSocket-Key, -Version 13 and -Protocol mqtt. A broker that refuses the upgrade (an
 * HTTP status other than 101, a wrong accept key) fails the connect with MIDGE_ERR_PROTOCOL
 * and says why in on_log. MIDGE_ERR_INVAL for a bad path or header line.
 * (paho: ws_set_options(path="/mqtt", headers=None)) */
int midge_ws_set_options(midge_client *c, const char *path, const char *headers);

/* ------------------------------------------------------------------------------------------ */
/* TLS (OpenSSL). Set before connect; each takes effect at the next connect. A handshake runs
 * on the client's loop without blocking it and counts against the connect timeout. A failed
 * handshake (untrusted or expired certificate, host name mismatch, no shared cipher, ...) fails
 * the connect with MIDGE_ERR_TLS; on_log gets OpenSSL's reasons at MIDGE_LOG_ERR. */

/* Verify the broker against cafile (PEM, may hold several certificates) and / or capath (a
 * directory of hashed certificates, `openssl rehash`); both NULL: the system's CA store
 * (OpenSSL's default paths). certfile / keyfile (PEM, both or neither): the client certificate
 * the broker may require; pw_callback decrypts an encrypted keyfile (OpenSSL's pem_password_cb:
 * fill buf with at most size bytes, return their count; userdata is the client's userdata),
 * NULL: OpenSSL asks on the terminal. The broker's certificate must match the host name given
 * to connect (DNS name or IP address in its subjectAltName) unless midge_tls_insecure_set.
 * MIDGE_ERR_INVAL if a given file cannot be opened (libmosquitto's "File not found"; capath
 * is looked into only while verifying, as by libmosquitto), or for certfile without keyfile. MIDGE_ERR_BUSY while connected or connecting.
 * (paho: tls_set(ca_certs, certfile, keyfile, keyfile_password=...); libmosquitto:
 * mosquitto_tls_set(mosq, cafile, capath, certfile, keyfile, pw_callback)) */
int midge_tls_set(midge_client *c, const char *cafile, const char *capath, const char *certfile,
                  const char *keyfile,
                  int (*pw_callback)(char *buf, int size, int rwflag, void *userdata));

/* Trust the system's CA store as well as a cafile / capath given to midge_tls_set (alone, it
 * turns TLS on with the system's store). (libmosquitto: MOSQ_OPT_TLS_USE_OS_CERTS; the tools'
 * --tls-use-os-certs) */
int midge_tls_use_os_certs(midge_client *c, bool use);

/* Certificate requirements of midge_tls_opts_set. */
#define MIDGE_TLS_CERT_NONE 0     /* do not verify the broker's certificate at all */
#define MIDGE_TLS_CERT_REQUIRED 1 /* verify it (the default) */

/* cert_reqs: MIDGE_TLS_CERT_REQUIRED or _NONE. tls_version: the lowest TLS version accepted,
 * "tlsv1.3", "tlsv1.2" (the default) or "tlsv1.1"; NULL keeps the default. ciphers: an OpenSSL
 * cipher list for TLS 1.2 and below (`openssl ciphers`), NULL for OpenSSL's default. A list
 * OpenSSL does not know fails at connect (MIDGE_ERR_TLS). MIDGE_ERR_INVAL for another version
 * or cert_reqs. (paho: tls_set(cert_reqs=, tls_version=, ciphers=); libmosquitto:
 * mosquitto_tls_opts_set) */
int midge_tls_opts_set(midge_client *c, int cert_reqs, const char *tls_version,
                       const char *ciphers);

/* true: do not check that the broker's certificate names the host connected to (the chain is
 * still verified). For tests; a man in the middle with any certificate from a trusted CA gets
 * in. (paho: tls_insecure_set; libmosquitto: mosquitto_tls_insecure_set) */
int midge_tls_insecure_set(midge_client *c, bool insecure);

/* TLS with a pre-shared key instead of certificates: psk_hex is the key in hex (as in
 * mosquitto's psk_file), identity the name the broker looks it up by, ciphers NULL for
 * OpenSSL's default. Replaces certificate settings of midge_tls_set. MIDGE_ERR_INVAL for a key
 * that is not hex or longer than 256 bytes, or a missing identity. (paho: tls_set with a PSK
 * context; libmosquitto: mosquitto_tls_psk_set) */
int midge_tls_psk_set(midge_client *c, const char *psk_hex, const char *identity,
                      const char *ciphers);

/* ------------------------------------------------------------------------------------------ */
/* MQTT 5.0 properties (paho: paho.mqtt.properties.Properties)                                */

/* Identifiers: the MQTT 5.0 property ids (spec section 2.2.2.2). */
enum {
	MIDGE_PROP_PAYLOAD_FORMAT = 0x01,           /* byte    PUBLISH, will */
	MIDGE_PROP_MESSAGE_EXPIRY = 0x02,           /* u32     PUBLISH, will */
	MIDGE_PROP_CONTENT_TYPE = 0x03,             /* string  PUBLISH, will */
	MIDGE_PROP_RESPONSE_TOPIC = 0x08,           /* string  PUBLISH, will */
	MIDGE_PROP_CORRELATION_DATA = 0x09,         /* binary  PUBLISH, will */
	MIDGE_PROP_SUBSCRIPTION_ID = 0x0B,          /* varint  PUBLISH (received), SUBSCRIBE */
	MIDGE_PROP_SESSION_EXPIRY = 0x11,           /* u32     CONNECT, CONNACK, DISCONNECT */
	MIDGE_PROP_ASSIGNED_CLIENT_ID = 0x12,       /* string  CONNACK */
	MIDGE_PROP_SERVER_KEEP_ALIVE = 0x13,        /* u16     CONNACK */
	MIDGE_PROP_AUTH_METHOD = 0x15,              /* string  CONNECT, CONNACK, AUTH */
	MIDGE_PROP_AUTH_DATA = 0x16,                /* binary  CONNECT, CONNACK, AUTH */
	MIDGE_PROP_REQUEST_PROBLEM_INFO = 0x17,     /* byte    CONNECT */
	MIDGE_PROP_WILL_DELAY = 0x18,               /* u32     will */
	MIDGE_PROP_REQUEST_RESPONSE_INFO = 0x19,    /* byte    CONNECT */
	MIDGE_PROP_RESPONSE_INFO = 0x1A,            /* string  CONNACK */
	MIDGE_PROP_SERVER_REFERENCE = 0x1C,         /* string  CONNACK, DISCONNECT */
	MIDGE_PROP_REASON_STRING = 0x1F,            /* string  acks, DISCONNECT */
	MIDGE_PROP_RECEIVE_MAXIMUM = 0x21,          /* u16     CONNECT, CONNACK */
	MIDGE_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,      /* u16     CONNECT, CONNACK */
	MIDGE_PROP_TOPIC_ALIAS = 0x23,              /* u16     PUBLISH */
	MIDGE_PROP_MAXIMUM_QOS = 0x24,              /* byte    CONNACK */
	MIDGE_PROP_RETAIN_AVAILABLE = 0x25,         /* byte    CONNACK */
	MIDGE_PROP_USER_PROPERTY = 0x26,            /* string pair, any packet, repeatable */
	MIDGE_PROP_MAXIMUM_PACKET_SIZE = 0x27,      /* u32     CONNECT, CONNACK */
	MIDGE_PROP_WILDCARD_SUB_AVAILABLE = 0x28,   /* byte    CONNACK */
	MIDGE_PROP_SUB_ID_AVAILABLE = 0x29,         /* byte    CONNACK */
	MIDGE_PROP_SHARED_SUB_AVAILABLE = 0x2A      /* byte    CONNACK */
};

/* A new, empty property list; NULL when out of memory. The caller frees it with
 * midge_properties_free (NULL allowed). Calls that take properties copy them. */
midge_properties *midge_properties_new(void);
void midge_properties_free(midge_properties *p);
/* A copy (e.g. to keep a received message's properties); NULL for NULL or out of memory. */
midge_properties *midge_properties_dup(const midge_properties *p);
/* Remove every property. */
void midge_properties_clear(midge_properties *p);

/* Generic setters; each replaces an earlier value of the same id (user properties add).
 * MIDGE_ERR_INVAL: wrong type for the id, value out of range (a u16 over 65535, a byte over 1
 * where 0/1 only, receive maximum 0, ...). MIDGE_ERR_UTF8: string not valid MQTT UTF-8. */
int midge_properties_set_int(midge_properties *p, int id, uint32_t value);   /* byte/u16/u32/varint */
int midge_properties_set_string(midge_properties *p, int id, const char *s);  /* string ids */
int midge_properties_set_binary(midge_properties *p, int id, const void *data, size_t len);
int midge_properties_add_user(midge_properties *p, const char *key, const char *value);
/* Remove the property id (all user properties for MIDGE_PROP_USER_PROPERTY); MIDGE_ERR_NOT_FOUND
 * if absent. */
int midge_properties_remove(midge_properties *p, int id);

/* Named setters (paho: props.PayloadFormatIndicator = 1, props.MessageExpiryInterval = 60, ...) */
int midge_properties_set_payload_format(midge_properties *p, int utf8);           /* 0 or 1 */
int midge_properties_set_message_expiry(midge_properties *p, uint32_t seconds);
int midge_properties_set_content_type(midge_properties *p, const char *s);
int midge_properties_set_response_topic(midge_properties *p, const char *topic);  /* a topic name */
int midge_properties_set_correlation_data(midge_properties *p, const void *data, size_t len);
int midge_properties_set_subscription_id(midge_properties *p, uint32_t id);       /* 1..268435455 */
int midge_properties_set_session_expiry(midge_properties *p, uint32_t seconds);   /* 0xFFFFFFFF: never */
int midge_properties_set_will_delay(midge_properties *p, uint32_t seconds);
int midge_properties_set_receive_maximum(midge_properties *p, uint16_t n);        /* 1..65535 */
int midge_properties_set_maximum_packet_size(midge_properties *p, uint32_t n);    /* >= 1 */
int midge_properties_set_topic_alias_maximum(midge_properties *p, uint16_t n);
int midge_properties_set_topic_alias(midge_properties *p, uint16_t alias);        /* >= 1 */
int midge_properties_set_reason_string(midge_properties *p, const char *s);

/* Getters. All accept p == NULL (nothing present). */
bool midge_properties_has(const midge_properties *p, int id);
/* Number of properties (user properties and subscription ids count one each). */
int midge_properties_count(const midge_properties *p);
/* Numeric property: MIDGE_OK and *out, or MIDGE_ERR_NOT_FOUND (also for a non-numeric id).
 * For MIDGE_PROP_SUBSCRIPTION_ID the first one. */
int midge_properties_get_int(const midge_properties *p, int id, uint32_t *out);
/* String property as a '\0'-terminated string, NULL if absent. Borrowed from p. */
const char *midge_properties_get_string(const midge_properties *p, int id);
/* String or binary property: MIDGE_OK with *data (borrowed) and *len, or MIDGE_ERR_NOT_FOUND. */
int midge_properties_get_binary(const midge_properties *p, int id, const void **data, size_t *len);
/* User properties, in the order received (the spec keeps order; keys may repeat). */
int midge_properties_user_count(const midge_properties *p);
int midge_properties_user_at(const midge_properties *p, int i, const char **key,
                             const char **value);                 /* MIDGE_ERR_NOT_FOUND past end */
const char *midge_properties_get_user(const midge_properties *p, const char *key); /* first */
/* Subscription identifiers of a received PUBLISH (one per matching subscription). Writes up to
 * max into out and returns how many there are. */
int midge_properties_get_subscription_ids(const midge_properties *p, uint32_t *out, int max);
/* The property's name in the spec ("Message Expiry Interval"), "Unknown" otherwise. */
const char *midge_property_name(int id);

/* ------------------------------------------------------------------------------------------ */
/* Checks and lookups, for programs that validate input before they send it (midge_pub and     */
/* midge_sub use them). The answers are the library's own: a topic midge_pub_topic_check       */
/* accepts, midge_publish accepts. (libmosquitto: mosquitto_validate_utf8,                      */
/* mosquitto_pub_topic_check, mosquitto_sub_topic_check, mosquitto_string_to_property_info,     */
/* mosquitto_property_check_command.) Section kept apart so additions elsewhere merge cleanly.  */

/* Is s[0..len) a valid MQTT UTF-8 string body: well-formed UTF-8 (no overlong form, surrogate
 * or code point above U+10FFFF) without U+0000 [MQTT-1.5.4-1/2]? Other control characters are
 * allowed. The length limit of an MQTT string (65535 bytes) is not checked here.
 * Returns MIDGE_OK, MIDGE_ERR_UTF8, or MIDGE_ERR_INVAL for s NULL with len > 0. */
int midge_validate_utf8(const char *s, size_t len);

/* A topic name for PUBLISH (or a will, or a Response Topic): MIDGE_OK; MIDGE_ERR_TOPIC if it
 * is empty, longer than 65535 bytes or has '+' or '#'; MIDGE_ERR_UTF8; MIDGE_ERR_INVAL for
 * NULL. */
int midge_pub_topic_check(const char *topic);

/* A topic filter for SUBSCRIBE / UNSUBSCRIBE: MIDGE_OK; MIDGE_ERR_TOPIC if it is empty, longer
 * than 65535 bytes, has '#' other than as the whole last level or '+' other than as a whole
 * level, or starts with "$share/" without a group (non-empty, no wildcards) and a filter after
 * it; MIDGE_ERR_UTF8; MIDGE_ERR_INVAL for NULL. */
int midge_sub_topic_check(const char *filter);

/* Data types of MQTT 5.0 property values (the values of libmosquitto's MQTT_PROP_TYPE_*). */
enum {
	MIDGE_PROP_TYPE_BYTE = 1,       /* midge_properties_set_int, 0..255 */
	MIDGE_PROP_TYPE_INT16 = 2,      /* midge_properties_set_int, 0..65535 */
	MIDGE_PROP_TYPE_INT32 = 3,      /* midge_properties_set_int */
	MIDGE_PROP_TYPE_VARINT = 4,     /* midge_properties_set_int, 0..268435455 */
	MIDGE_PROP_TYPE_BINARY = 5,     /* midge_properties_set_binary */
	MIDGE_PROP_TYPE_STRING = 6,     /* midge_properties_set_string */
	MIDGE_PROP_TYPE_STRING_PAIR = 7 /* midge_properties_add_user */
};

/* The data type of property id: a MIDGE_PROP_TYPE_*, or MIDGE_ERR_NOT_FOUND for an id that is
 * not an MQTT 5.0 property. */
int midge_property_type(int id);

/* A property named the way mosquitto_pub -D names it: the spec's name in lower case with '-'
 * for each space ("message-expiry-interval", "user-property", "maximum-qos"); letters match in
 * either case. Sets *id (a MIDGE_PROP_*) and *type (a MIDGE_PROP_TYPE_*; either pointer may
 * be NULL) and returns MIDGE_OK, or MIDGE_ERR_NOT_FOUND (MIDGE_ERR_INVAL for NULL name).
 * (libmosquitto: mosquitto_string_to_property_info) */
int midge_string_to_property_info(const char *name, int *id, int *type);

/* The packets a client sends, for midge_property_check_command: the MQTT packet types, and
 * MIDGE_CMD_WILL for the will's properties inside CONNECT. (libmosquitto: CMD_*) */
enum {
	MIDGE_CMD_CONNECT = 1,
	MIDGE_CMD_PUBLISH = 3,
	MIDGE_CMD_PUBACK = 4,
	MIDGE_CMD_PUBREC = 5,
	MIDGE_CMD_PUBREL = 6,
	MIDGE_CMD_PUBCOMP = 7,
	MIDGE_CMD_SUBSCRIBE = 8,
	MIDGE_CMD_UNSUBSCRIBE = 10,
	MIDGE_CMD_DISCONNECT = 14,
	MIDGE_CMD_AUTH = 15,
	MIDGE_CMD_WILL = 16
};

/* May a client send property id in packet command (a MIDGE_CMD_*)? MIDGE_OK, or
 * MIDGE_ERR_PROPERTY (e.g. Topic Alias in SUBSCRIBE, or a Subscription Identifier in PUBLISH,
 * which only a server sends [MQTT-3.3.4-6]); MIDGE_ERR_NOT_FOUND for an unknown id;
 * MIDGE_ERR_INVAL for a packet a client does not send. The library applies the same rule to
 * the properties given to midge_connect_ex, midge_publish, midge_will_set, ...
 * (libmosquitto: mosquitto_property_check_command) */
int midge_property_check_command(int command, int id);

#ifdef __cplusplus
}
#endif

#endif
