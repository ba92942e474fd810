// outbomb hands the host a response of 8 MiB of zeros.
#include "funless.h"
#include <stdlib.h>
INVOKE {
    uint32_t n = 8u << 20;
    char *b = malloc(n);
    if (!b) return 1;
    for (uint32_t i = 0; i < n; i++) b[i] = '0';
    fl_insert_response(P(b), n);
    return 0;
}
