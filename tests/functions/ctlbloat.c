// ctlbloat logs 64 KiB of control bytes (six bytes each once escaped in
// JSON) and answers a string of 60 KiB of escapes: the largest record a
// call may leave, at its most expensive to list.
#include "funless.h"
static char line[1024];
static char out[61442];
INVOKE {
    for (int i = 0; i < (int)sizeof line; i++) line[i] = '\x01';
    for (int i = 0; i < 64; i++) fl_console_log(P(line), sizeof line);
    out[0] = '"';
    for (int i = 0; i < 10240; i++) {
        char *p = out + 1 + 6 * i;
        p[0] = '\\'; p[1] = 'u'; p[2] = '0'; p[3] = '0'; p[4] = '0'; p[5] = '1';
    }
    out[sizeof out - 1] = '"';
    fl_insert_response(P(out), sizeof out);
    return 0;
}
