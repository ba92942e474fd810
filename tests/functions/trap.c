// trap executes unreachable.
#include "funless.h"
INVOKE { __builtin_trap(); }
