// matmul multiplies two 100×100 float64 matrices (matmul.h) and returns
// {"checksum":...}: a C compute loop, for the price of the timeout check.
#include "funless.h"
#include "matmul.h"
#include <stdio.h>
INVOKE {
    (void)input_len;
    char out[64];
    int n = snprintf(out, sizeof out, "{\"checksum\":%.17g}", matmul_checksum(100, 42));
    fl_insert_response(P(out), n);
    return 0;
}
