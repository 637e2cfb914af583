/* SPDX-License-Identifier: MIT */
/* libpq, loaded when a policy first names a fleet store (dlopen): a broker without a fleet
 * neither loads it nor the twenty libraries behind it (Kerberos, LDAP, GnuTLS: some 3 MiB
 * resident), and the broker's code calls libpq by its own names through the pointers
 * below. */
#pragma once

#include <libpq-fe.h>

/* Loads libpq.so.5 and its functions once: 0, or -errno with *ret_error (static text, may
 * be NULL) saying what was missing. */
int fleet_libpq_load(const char **ret_error);

#define FLEET_LIBPQ_FUNCTIONS(X)                                                                   \
        X(PQconnectStartParams)                                                                    \
        X(PQconnectPoll)                                                                           \
        X(PQstatus)                                                                                \
        X(PQsocket)                                                                                \
        X(PQsetnonblocking)                                                                        \
        X(PQsendQueryParams)                                                                       \
        X(PQflush)                                                                                 \
        X(PQconsumeInput)                                                                          \
        X(PQisBusy)                                                                                \
        X(PQgetResult)                                                                             \
        X(PQresultStatus)                                                                          \
        X(PQresultErrorMessage)                                                                    \
        X(PQresultErrorField)                                                                      \
        X(PQntuples)                                                                               \
        X(PQnfields)                                                                               \
        X(PQgetvalue)                                                                              \
        X(PQgetisnull)                                                                             \
        X(PQclear)                                                                                 \
        X(PQerrorMessage)                                                                          \
        X(PQconninfoParse)                                                                         \
        X(PQconninfoFree)                                                                          \
        X(PQfreemem)                                                                               \
        X(PQfinish)

#define FLEET_LIBPQ_DECLARE(name) extern __typeof__(name) *sym_##name;
FLEET_LIBPQ_FUNCTIONS(FLEET_LIBPQ_DECLARE)
#undef FLEET_LIBPQ_DECLARE

/* Every call below goes through the loaded library (not in fleet-libpq.c, which defines
 * the pointers). */
#ifndef FLEET_LIBPQ_DEFINITIONS
#define PQconnectStartParams sym_PQconnectStartParams
#define PQconnectPoll sym_PQconnectPoll
#define PQstatus sym_PQstatus
#define PQsocket sym_PQsocket
#define PQsetnonblocking sym_PQsetnonblocking
#define PQsendQueryParams sym_PQsendQueryParams
#define PQflush sym_PQflush
#define PQconsumeInput sym_PQconsumeInput
#define PQisBusy sym_PQisBusy
#define PQgetResult sym_PQgetResult
#define PQresultStatus sym_PQresultStatus
#define PQresultErrorMessage sym_PQresultErrorMessage
#define PQresultErrorField sym_PQresultErrorField
#define PQntuples sym_PQntuples
#define PQnfields sym_PQnfields
#define PQgetvalue sym_PQgetvalue
#define PQgetisnull sym_PQgetisnull
#define PQclear sym_PQclear
#define PQconninfoParse sym_PQconninfoParse
#define PQconninfoFree sym_PQconninfoFree
#define PQfreemem sym_PQfreemem
#define PQerrorMessage sym_PQerrorMessage
#define PQfinish sym_PQfinish
#endif
