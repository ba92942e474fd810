// logflood writes a million log lines, then answers.
#include "funless.h"
INVOKE {
    static const char line[] = "flooding the log with a line of text";
    for (int i = 0; i < 1000000; i++) fl_console_log(P(line), sizeof line - 1);
    static const char ok[] = "\"done\"";
    fl_insert_response(P(ok), sizeof ok - 1);
    return 0;
}
