// spin never returns: the timeout must stop it without stalling others.
#include "funless.h"
volatile int sink;
INVOKE { for (;;) sink++; }
