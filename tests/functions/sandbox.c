// sandbox is a WASI command that tries to read a file and the environment
// and reports what it got: it must get nothing.
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    FILE *f = fopen("/etc/passwd", "r");
    const char *home = getenv("HOME");
    const char *path = getenv("PATH");
    printf("{\"file_opened\":%s,\"env_home\":%s,\"env_path\":%s}\n",
           f ? "true" : "false", home ? "true" : "false", path ? "true" : "false");
    return 0;
}
