// abifuzz calls one host import with arguments chosen by the caller: the
// input is a JSON array [which, a0, ..., a9] of unsigned integers. It lets
// a fuzzer pass wild pointers and lengths to every import of both host
// modules: each must either work or fail the call cleanly.
#include "funless.h"
#include <stdlib.h>
#define EF_IMPORT(name) __attribute__((import_module("edgefaas"), import_name(#name)))
EF_IMPORT(http_request) uint32_t ef_http_request(uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
    uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
EF_IMPORT(tcp_request) uint32_t ef_tcp_request(uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
EF_IMPORT(response_read) uint32_t ef_response_read(uint32_t, uint32_t);

INVOKE {
    char *in = malloc(input_len + 1);
    if (!in) return 1;
    fl_get_input_data(P(in));
    in[input_len] = 0;
    uint32_t v[11] = {0};
    char *p = in;
    for (int i = 0; i < 11 && *p; ) {
        if (*p >= '0' && *p <= '9') { v[i++] = (uint32_t)strtoul(p, &p, 10); } else { p++; }
    }
    uint32_t r = 0;
    switch (v[0] % 9) {
    case 0: fl_get_input_data(v[1]); break;
    case 1: fl_insert_response(v[1], v[2]); break;
    case 2: fl_insert_error(v[1], v[2]); break;
    case 3: fl_console_log(v[1], v[2]); break;
    case 4: fl_http_request(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]); break;
    case 5: r = ef_http_request(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]); break;
    case 6: r = ef_tcp_request(v[1], v[2], v[3], v[4], v[5]); break;
    case 7: r = ef_response_read(v[1], v[2]); break;
    case 8: ef_http_request(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]);
            r = ef_response_read(v[1], v[2]); break;
    }
    (void)r;
    static const char ok[] = "\"ok\"";
    fl_insert_response(P(ok), sizeof ok - 1);
    return 0;
}
