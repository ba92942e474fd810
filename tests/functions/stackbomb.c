// stackbomb recurses without end, with a large frame on the shadow stack.
#include "funless.h"
int deep(int n) { volatile char frame[4096]; frame[n % 4096] = (char)n; return deep(n + 1) + frame[0]; }
INVOKE { return deep(input_len); }
