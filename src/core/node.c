/* node.c — the process-wide node facts (see node.h). */
#include "core/node.h"

node g_node;
