/* proto/version.c - placeholder so the layer links while it is written. */
#include "proto/proto.h"
