/* SPDX-License-Identifier: MIT */
/* JSON lines, the form of the broker's own files (archives, held ends): one object per line. */
#pragma once

#include <json-c/json.h>

/* o as one line of plain JSON and a newline, all of it written to fd (retried on EINTR and
 * short writes): 0 or -errno. */
int json_line_write(int fd, json_object *o);
