/* SPDX-License-Identifier: MIT */
/* The fleet schema's migrations (the .sql files of this folder, docs/fleet.md), built in:
 * in increasing order of version. */
#pragma once

#include <stddef.h>

typedef struct FleetMigration {
        int version;
        const char *name; /* "0001-core" */
        const char *sql;
} FleetMigration;

extern const FleetMigration fleet_migrations[];
extern const size_t fleet_migrations_n;

/* The newest version built in. */
static inline int fleet_schema_newest(void) {
        return fleet_migrations[fleet_migrations_n - 1].version;
}
