/* SPDX-License-Identifier: MIT */
#define FLEET_LIBPQ_DEFINITIONS
#include "fleet-libpq.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#define FLEET_LIBPQ_DEFINE(name) __typeof__(name) *sym_##name;
FLEET_LIBPQ_FUNCTIONS(FLEET_LIBPQ_DEFINE)
#undef FLEET_LIBPQ_DEFINE

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_result = -ENOENT;
static const char *load_error;

static void load(void) {
        /* RTLD_LOCAL: its symbols serve only these pointers; never unloaded. */
        void *dl = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                load_error = "libpq.so.5 cannot be loaded (Debian: libpq5)";
                return;
        }
#define FLEET_LIBPQ_RESOLVE(name)                                                                  \
        if (!(sym_##name = (__typeof__(name) *) dlsym(dl, #name))) {                               \
                load_error = "libpq.so.5 lacks " #name;                                            \
                return;                                                                            \
        }
        FLEET_LIBPQ_FUNCTIONS(FLEET_LIBPQ_RESOLVE)
#undef FLEET_LIBPQ_RESOLVE
        load_result = 0;
}

int fleet_libpq_load(const char **ret_error) {
        (void) pthread_once(&once, load);
        if (ret_error)
                *ret_error = load_error;
        return load_result;
}
