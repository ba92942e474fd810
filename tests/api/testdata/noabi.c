// noabi is valid Wasm that exports neither __invoke nor _start, so uploads
// of it must be refused with "unsupported module interface".
__attribute__((export_name("add")))
int add(int a, int b) { return a + b; }
