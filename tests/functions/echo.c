// echo returns its input unchanged: the funless ABI's round trip.
#include "funless.h"
#include <stdlib.h>
INVOKE {
    char *in = malloc(input_len + 1);
    fl_get_input_data(P(in));
    fl_console_log(P("echoing"), 7);
    fl_insert_response(P(in), input_len);
    free(in);
    return 0;
}
