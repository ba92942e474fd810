// cfail is a WASI command that fails: a message on stderr, exit code 3.
#include <stdio.h>
int main(void) { fprintf(stderr, "cannot do that: no such widget\n"); return 3; }
