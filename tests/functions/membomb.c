// membomb grows linear memory until the host refuses, then traps like a
// guest whose allocator failed.
#include "funless.h"
INVOKE {
    while (__builtin_wasm_memory_grow(0, 16) != (__SIZE_TYPE__)-1) {}
    __builtin_trap();
}
