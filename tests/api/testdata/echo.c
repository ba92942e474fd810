// echo is a funless-ABI function (reactor): it answers with its input.
// Built by the tests with: clang --target=wasm32-wasi -O2 -nostdlib
//   -mexec-model=reactor -Wl,--no-entry -o echo.wasm echo.c
__attribute__((import_module("fl_imps"), import_name("__get_input_data")))
void get_input_data(char *ptr);
__attribute__((import_module("fl_imps"), import_name("__insert_response")))
void insert_response(const char *ptr, int len);

static char buf[65536];

__attribute__((export_name("__invoke")))
int invoke(int input_len) {
	if (input_len > (int)sizeof buf) {
		input_len = sizeof buf;
	}
	get_input_data(buf);
	insert_response(buf, input_len);
	return 0;
}
