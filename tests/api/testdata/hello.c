// hello is a WASI command: it writes a JSON object on stdout.
// Built by the tests with: clang --target=wasm32-wasi -O2 -o hello.wasm hello.c
#include <stdio.h>

int main(void) {
	fputs("{\"greeting\":\"hello\"}", stdout);
	return 0;
}
