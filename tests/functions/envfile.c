// envfile is a reactor that tries to read files, list directories and read
// the environment, and reports what it got: it must get nothing.
#include "funless.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
extern char **environ;
INVOKE {
    int files = 0;
    const char *paths[] = {"/etc/passwd", "/proc/self/environ", ".", "/", "../", "/root/.ssh/id_rsa"};
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        FILE *f = fopen(paths[i], "r");
        if (f) { files++; fclose(f); }
        DIR *d = opendir(paths[i]);
        if (d) { files++; closedir(d); }
    }
    int env = 0;
    for (char **e = environ; e && *e; e++) env++;
    char out[64];
    int n = snprintf(out, sizeof out, "{\"opened\":%d,\"env\":%d}", files, env);
    fl_insert_response(P(out), n);
    return 0;
}
