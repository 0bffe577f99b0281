/*
 * group.h - what the exit path (links.c) needs of group.c.
 */
#ifndef STRAND_GROUP_H
#define STRAND_GROUP_H

#include "internal.h"

/* At exit (strand__fate_exit): leave the group s was spawned into, if any. */
void strand__group_exit(struct strand *s);

#endif
