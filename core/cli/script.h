/* The script a command line names (script.c). */
#ifndef LR_SCRIPT_H
#define LR_SCRIPT_H

#include <stddef.h>

/* The path to load for NAME (NAME itself, or where the lookup found it, in
 * buf), or NULL with "cannot open NAME: ..." in err, saying where it looked
 * and naming near names.  A path is NAME as it is: loading it gives
 * lua5.4's own errors. */
const char *lr__script_find(const char *name, const char *lessons, char *buf, size_t n, char *err,
                            size_t errlen);

#endif
