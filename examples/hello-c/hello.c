// hello-c is hello as a WASI command in C: JSON args on stdin, the JSON
// result on stdout. It looks for "name":"..." without a JSON library to
// stay a few kilobytes.
#include <stdio.h>
#include <string.h>

int main(void) {
    char in[4096];
    size_t n = fread(in, 1, sizeof in - 1, stdin);
    in[n] = 0;
    char name[256] = "World";
    const char *p = strstr(in, "\"name\"");
    if (p && (p = strchr(p + 6, '"'))) {
        const char *q = strchr(p + 1, '"');
        if (q && q - p - 1 < (long)sizeof name) {
            memcpy(name, p + 1, q - p - 1);
            name[q - p - 1] = 0;
        }
    }
    fprintf(stderr, "greeting %s\n", name);
    printf("{\"message\":\"Hello, %s!\"}\n", name);
    return 0;
}
