/* broker/store.c - the no-op store: midge keeps state in memory until persistence lands. */
#include "broker/store.h"

void mg_store_session_created(const struct mg_session *s) { (void)s; }
void mg_store_session_removed(const struct mg_session *s) { (void)s; }
void mg_store_sub_added(const struct mg_session *s, const uint8_t *filter, size_t len, mg_subopts o,
                        uint32_t sub_id)
{
	(void)s; (void)filter; (void)len; (void)o; (void)sub_id;
}
void mg_store_sub_removed(const struct mg_session *s, const uint8_t *filter, size_t len)
{
	(void)s; (void)filter; (void)len;
}
void mg_store_msg_queued(const struct mg_session *s, const struct mg_msg *m, uint8_t qos)
{
	(void)s; (void)m; (void)qos;
}
void mg_store_msg_acked(const struct mg_session *s, uint16_t mid) { (void)s; (void)mid; }
void mg_store_retained(const uint8_t *topic, size_t len, const struct mg_msg *m)
{
	(void)topic; (void)len; (void)m;
}
