/* client/topic.c - topic helpers of the public API; the matching itself is proto/'s. */
#include <string.h>

#include "client/client.h"

int midge_topic_matches_sub(const char *sub, const char *topic, bool *result)
{
	if (!sub || !topic || !result)
		return MIDGE_ERR_INVAL;
	*result = false;
	size_t fl = strlen(sub), tl = strlen(topic);
	if (fl > 65535 || tl > 65535)
		return MIDGE_ERR_TOPIC;
	mg_bytes group, inner;
	int sh = mg_share_parse((const uint8_t *)sub, fl, &group, &inner);
	if (sh < 0)
		return MIDGE_ERR_TOPIC;
	if (sh == 0) {
		if (mg_topic_filter_check((const uint8_t *)sub, fl) != MG_OK)
			return MIDGE_ERR_TOPIC;
		inner = (mg_bytes){ (const uint8_t *)sub, (uint32_t)fl };
	}
	if (mg_topic_name_check((const uint8_t *)topic, tl) != MG_OK)
		return MIDGE_ERR_TOPIC;
	*result = mg_topic_match(inner.p, inner.len, (const uint8_t *)topic, tl);
	return MIDGE_OK;
}
