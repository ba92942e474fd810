// fail reports a function error, the way FunLess functions do.
#include "funless.h"
INVOKE { static const char s[] = "the answer is not 42"; fl_insert_error(P(s), sizeof s - 1); return 1; }
