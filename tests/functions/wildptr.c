// wildptr asks the host to write its input far outside its memory.
#include "funless.h"
INVOKE { fl_get_input_data(0xFFFFFF00u); return 0; }
