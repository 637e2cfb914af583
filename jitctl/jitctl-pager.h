/* SPDX-License-Identifier: MIT */
/* Long listings for people go through a pager, as systemctl's and journalctl's do. */
#pragma once

#include <stdbool.h>

/* Sends standard output through a pager when it is a terminal (not a dumb one: $TERM set
 * and not "dumb") and disabled is false:
 * $JIT_PAGER, else $PAGER, else less ("" or "cat" turn it off). Run as root on someone
 * else's behalf (sudo, pkexec, a setuid bit), only less runs, with LESSSECURE=1: a pager
 * that runs shell commands would hand out a root shell. Without any pager the output
 * still reaches the terminal. */
void pager_start(bool disabled);
/* The end of the output: flushes standard output and, with a pager, closes it and waits
 * for the person to leave the pager. False when standard output could not be written
 * (leaving the pager before the end is not a failure). */
bool pager_finish(void);
