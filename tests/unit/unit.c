/* The one live-block count of a suite's counting allocator (unit.h). */
#include "unit.h"

long unit_live_blocks;
