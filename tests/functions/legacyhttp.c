// legacyhttp makes a GET with FunLess's __http_request, whose guest buffer
// is 1024 bytes, and returns {"status", "len"}: the url is the whole input,
// a JSON string.
#include "funless.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
INVOKE {
    char *in = malloc(input_len + 1);
    fl_get_input_data(P(in));
    in[input_len] = 0;
    char *url = in + 1;                 // strip the JSON quotes
    url[strlen(url) - 1] = 0;
    static char resp[1024];
    uint32_t resp_len = 0;
    uint16_t status = 0;
    fl_http_request(P(resp), P(&resp_len), P(&status), 0, P(url), strlen(url), 0, 0, 0, 0);
    char out[64];
    int n = snprintf(out, sizeof out, "{\"status\":%u,\"len\":%u}", status, resp_len);
    fl_insert_response(P(out), n);
    return 0;
}
