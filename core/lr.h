/* Transitional: every layer's header, for files not yet moved onto their own. */
#ifndef LR_INTERNAL_H
#define LR_INTERNAL_H

#include "embed/embed.h"

#endif
