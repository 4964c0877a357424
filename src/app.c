/* app.c: the one instance of the process-wide state (filled in by main). */
#include "app.h"

struct app APP;
