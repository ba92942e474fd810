// nonjson answers with text that is not JSON.
#include "funless.h"
INVOKE { static const char s[] = "hello, not json"; fl_insert_response(P(s), sizeof s - 1); return 0; }
