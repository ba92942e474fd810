// newlines writes tens of millions of bare newlines to stderr, one write
// each, then answers: every write is an empty log line.
#include "funless.h"
#include <unistd.h>
INVOKE {
    for (int i = 0; i < 30000000; i++) write(2, "\n", 1);
    static const char ok[] = "\"done\"";
    fl_insert_response(P(ok), sizeof ok - 1);
    return 0;
}
