/* SPDX-License-Identifier: MIT */
/* The fleet schema's migrations (the .sql files of this folder, docs/fleet.md), built in:
 * version N is fleet_migrations[N - 1]. */
#pragma once

#include <stddef.h>

typedef struct FleetMigration {
        int version;
        const char *name; /* "0001-core" */
        const char *sql;
} FleetMigration;

extern const FleetMigration fleet_migrations[];
extern const size_t fleet_migrations_n;
