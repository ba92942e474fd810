// The funless ABI's imports, for the test corpus of hostile functions.
#include <stdint.h>
#define FL_IMPORT(name) __attribute__((import_module("fl_imps"), import_name(#name)))
FL_IMPORT(__get_input_data) void fl_get_input_data(uint32_t ptr);
FL_IMPORT(__insert_response) void fl_insert_response(uint32_t ptr, uint32_t len);
FL_IMPORT(__insert_error) void fl_insert_error(uint32_t ptr, uint32_t len);
FL_IMPORT(__console_log) void fl_console_log(uint32_t ptr, uint32_t len);
FL_IMPORT(__http_request) void fl_http_request(uint32_t resp_ptr, uint32_t resp_len_ptr, uint32_t status_ptr,
    uint32_t method, uint32_t uri_ptr, uint32_t uri_len, uint32_t hdr_ptr, uint32_t hdr_len,
    uint32_t body_ptr, uint32_t body_len);
#define INVOKE __attribute__((export_name("__invoke"))) int invoke(int input_len)
#define P(x) ((uint32_t)(uintptr_t)(x))
