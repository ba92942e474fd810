// calltree never loops but never ends: 2^62 calls through a function
// pointer, which no compiler turns into a loop. The timeout must stop it
// although it has no loop back-edge to check at (function entries count).
#include "funless.h"
static int tree(int depth);
static int (*volatile next)(int) = tree;
static int tree(int depth) { return depth == 0 ? 1 : next(depth - 1) + next(depth - 1); }
INVOKE { return next(62) & 0; }
