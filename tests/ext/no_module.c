#include "ipft.h"
struct event { unsigned int len; } __ipft_event_struct;
