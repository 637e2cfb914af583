/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>

#include "audit-store.h"
#include "broker-journal.h"
#include "cleanup.h"
#include "duration.h"
#include "notify-spawn.h"
#include "outbox.h"
#include "text-escape.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

typedef struct Run {
        Notifier *n;
        int64_t row_id;
        char *hook;    /* identity (outbox_hook_identity()) */
        char *command; /* for messages: never the arguments, which may hold secrets */
        unsigned hook_number;
        char *event;
        char event_id[AUDIT_CHAIN_ID_LEN + 32];
        int64_t request_id;
        unsigned attempts; /* failed before this one */
        uint64_t created_at;
        uint64_t timeout; /* seconds */
        uint64_t retry;   /* seconds */
        pid_t pid;
        int output_fd;
        sd_event_source *child_source, *output_source, *timer_source;
        char output[NOTIFY_OUTPUT_KEEP];
        size_t output_len;
        uint64_t output_total;
        bool timed_out;
} Run;

struct Notifier {
        sd_event *event;
        BrokerDb *db;
        const Policy *policy;
        char **identities;      /* of the policy's hooks, in its order */
        uint64_t *paused_until; /* per hook: CLOCK_MONOTONIC usec after a failure */
        size_t n_hooks;
        char prefix[AUDIT_CHAIN_ID_LEN + 1]; /* of every event id: the database's chain id */
        Run *runs[NOTIFY_RUNNING_MAX];
        sd_event_source *timer; /* the next row that becomes due */
        sd_event_source *defer; /* a slot or a hook became free: look again */
        bool dirty;             /* something may be due: look at the next kick */
};

static void pick(Notifier *n);

size_t notifier_running(const Notifier *n) {
        size_t k = 0;
        for (size_t i = 0; n && i < NOTIFY_RUNNING_MAX; i++)
                k += n->runs[i] != NULL;
        return k;
}

/* ---- the journal ---- */

/* The last line of what the hook wrote, for the entry's text. */
static void last_line(const Run *run, char *buf, size_t len) {
        size_t end = run->output_len;
        while (end > 0 && (run->output[end - 1] == '\n' || run->output[end - 1] == '\r'))
                end--;
        size_t start = end;
        while (start > 0 && run->output[start - 1] != '\n')
                start--;
        snprintf(buf, len, "%.*s", (int) (end - start), run->output + start);
}

static void log_run(const Run *run, JitEvent ev, int priority, const char *extra_field,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void log_run(const Run *run, JitEvent ev, int priority, const char *extra_field,
                    const char *fmt, ...) {
        _cleanup_free_ char *message = NULL, *escaped = NULL, *output = NULL;
        char hook[2048], event[128], id[128], request[64], attempts[64];
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&message, fmt, ap) < 0)
                message = NULL;
        va_end(ap);
        snprintf(hook, sizeof(hook), "JIT_NOTIFY_HOOK=%s", run->command ?: "?");
        snprintf(event, sizeof(event), "JIT_NOTIFY_EVENT=%s", run->event ?: "?");
        snprintf(id, sizeof(id), "JIT_NOTIFY_EVENT_ID=%s", run->event_id);
        snprintf(request, sizeof(request), "JIT_REQUEST_ID=%" PRId64, run->request_id);
        /* Counting this one: finish() counted a failure already. */
        snprintf(attempts, sizeof(attempts), "JIT_NOTIFY_ATTEMPTS=%u",
                 run->attempts + (ev == JIT_EVENT_NOTIFY_DELIVERED ? 1 : 0));
        escaped = jit_text_escape(run->output, run->output_len);
        if (escaped && asprintf(&output, "JIT_NOTIFY_OUTPUT=%s", escaped) < 0)
                output = NULL;
        const char *fields[] = { hook,
                                 event,
                                 id,
                                 request,
                                 attempts,
                                 extra_field ?: (output ?: "JIT_NOTIFY_OUTPUT="),
                                 extra_field ? output : NULL,
                                 NULL };
        log_event(ev, priority, NULL, "broker", fields, "%s", message ?: "notify hook");
}

/* ---- one run of a hook ---- */

static void run_free(Run *run) {
        if (!run)
                return;
        sd_event_source_disable_unref(run->child_source);
        sd_event_source_disable_unref(run->output_source);
        sd_event_source_disable_unref(run->timer_source);
        safe_close(run->output_fd);
        free(run->hook);
        free(run->command);
        free(run->event);
        free(run);
}

/* Keeps the last NOTIFY_OUTPUT_KEEP bytes of what the hook writes. */
static void read_output(Run *run) {
        char buf[NOTIFY_OUTPUT_KEEP]; /* a read never brings more than is kept */
        for (;;) {
                ssize_t k = read(run->output_fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        if (k == 0 || errno != EAGAIN)
                                run->output_source =
                                        sd_event_source_disable_unref(run->output_source);
                        return;
                }
                size_t got = (size_t) k;
                run->output_total += got;
                if (run->output_len + got > sizeof(run->output)) {
                        size_t drop = run->output_len + got - sizeof(run->output);
                        memmove(run->output, run->output + drop, run->output_len - drop);
                        run->output_len -= drop;
                }
                memcpy(run->output + run->output_len, buf, got);
                run->output_len += got;
        }
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        read_output(userdata);
        return 0;
}

static uint64_t backoff_usec(uint64_t retry_sec, unsigned attempts) {
        uint64_t d = (retry_sec ?: 1) * USEC_PER_SEC;
        for (unsigned i = 1; i < attempts && d < NOTIFY_BACKOFF_MAX_USEC; i++)
                d *= 2;
        return d < NOTIFY_BACKOFF_MAX_USEC ? d : NOTIFY_BACKOFF_MAX_USEC;
}

static ssize_t hook_index(const Notifier *n, const char *identity, unsigned preferred) {
        if (preferred < n->n_hooks && STREQ(n->identities[preferred], identity))
                return preferred;
        for (size_t i = 0; i < n->n_hooks; i++)
                if (STREQ(n->identities[i], identity))
                        return (ssize_t) i;
        return -1;
}

/* The run is over: its row leaves the outbox (delivered, or given up) or waits for its
 * next attempt, and the slot goes to what is due next. error NULL: delivered. */
static void finish(Run *run, const char *error) {
        Notifier *n = run->n;
        uint64_t now = now_usec(CLOCK_REALTIME);
        char line[256] = "";
        int r;

        last_line(run, line, sizeof(line));
        if (!error) {
                if ((r = outbox_delete(n->db, run->row_id)) < 0)
                        log_error_errno(r,
                                        "notify: removing delivered notification %s: %m (%s); "
                                        "it will be delivered again",
                                        run->event_id, db_error(n->db));
                log_run(run, JIT_EVENT_NOTIFY_DELIVERED, LOG_DEBUG, NULL,
                        "notify hook %s took event %s of request %" PRId64 " (%s)", run->command,
                        run->event, run->request_id, run->event_id);
        } else {
                unsigned attempts = ++run->attempts;
                ssize_t h = hook_index(n, run->hook, run->hook_number);
                if (attempts >= NOTIFY_ATTEMPTS_MAX ||
                    now >= run->created_at + NOTIFY_GIVE_UP_USEC) {
                        if ((r = outbox_delete(n->db, run->row_id)) < 0)
                                log_error_errno(r, "notify: removing notification %s: %m (%s)",
                                                run->event_id, db_error(n->db));
                        log_run(run, JIT_EVENT_NOTIFY_DROPPED, LOG_ERR, "JIT_NOTIFY_DROPPED=1",
                                "notify hook %s failed for event %s of request %" PRId64
                                " (%s): %s%s%s; given up after %u attempts",
                                run->command, run->event, run->request_id, run->event_id, error,
                                line[0] ? ": " : "", line, attempts);
                } else {
                        uint64_t wait = backoff_usec(run->retry, attempts);
                        char next[RFC3339_BUF_MAX], field[64], d[DURATION_BUF_MAX];
                        r = outbox_failed(n->db, run->row_id, attempts, now + wait, error);
                        if (r < 0 && r != -ENOENT)
                                log_error_errno(
                                        r, "notify: recording the failed attempt of %s: %m (%s)",
                                        run->event_id, db_error(n->db));
                        snprintf(field, sizeof(field), "JIT_NOTIFY_NEXT_ATTEMPT=%s",
                                 format_rfc3339(now + wait, next, sizeof(next)));
                        /* Gone meanwhile (a reload dropped its hook): nothing to retry. */
                        if (r == -ENOENT)
                                log_run(run, JIT_EVENT_NOTIFY_FAILED, LOG_WARNING, field,
                                        "notify hook %s failed for event %s of request %" PRId64
                                        " (%s, attempt %u): %s%s%s; not retried: dropped meanwhile",
                                        run->command, run->event, run->request_id, run->event_id,
                                        attempts, error, line[0] ? ": " : "", line);
                        else
                                log_run(run, JIT_EVENT_NOTIFY_FAILED, LOG_WARNING, field,
                                        "notify hook %s failed for event %s of request %" PRId64
                                        " (%s, attempt %u): %s%s%s; retrying in %s",
                                        run->command, run->event, run->request_id, run->event_id,
                                        attempts, error, line[0] ? ": " : "", line,
                                        duration_format(wait / USEC_PER_SEC ?: 1, d, sizeof(d)));
                }
                /* The hook is probably down: its other events wait a little as well. */
                if (h >= 0)
                        n->paused_until[h] =
                                now_usec(CLOCK_MONOTONIC) + (run->retry ?: 1) * USEC_PER_SEC;
        }
        for (size_t i = 0; i < NOTIFY_RUNNING_MAX; i++)
                if (n->runs[i] == run)
                        n->runs[i] = NULL;
        run_free(run);
        /* Not from here: start() calls this too, from inside pick(). */
        n->dirty = true;
        (void) sd_event_source_set_enabled(n->defer, SD_EVENT_ONESHOT);
}

static int on_exit_hook(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Run *run = userdata;
        char why[128];

        read_output(run);
        /* Whatever it left running goes with it. The process is a zombie until it is reaped
         * below, so its process group cannot have been given to anyone else. */
        (void) kill(-run->pid, SIGKILL);
        siginfo_t reaped = {};
        (void) waitid(P_PID, (id_t) run->pid, &reaped, WEXITED | WNOHANG);
        run->child_source = sd_event_source_disable_unref(run->child_source);

        /* Exit 0 is delivered, even when the timeout came in the same loop iteration. */
        if (si->si_code == CLD_EXITED && si->si_status == 0) {
                finish(run, NULL);
                return 0;
        }
        if (run->timed_out)
                snprintf(why, sizeof(why), "killed after its timeout of %" PRIu64 "s",
                         run->timeout);
        else if (si->si_code == CLD_EXITED)
                snprintf(why, sizeof(why), "exited with status %d", si->si_status);
        else
                snprintf(why, sizeof(why), "killed by signal %s",
                         sigabbrev_np(si->si_status) ?: "unknown");
        finish(run, why);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Run *run = userdata;
        run->timed_out = true;
        (void) kill(-run->pid, SIGKILL);
        return 0;
}

/* The event's document as the hook reads it: the row's payload with its id and attempt. */
static int document(const Run *run, const char *payload, json_object **ret_doc, char **ret_text) {
        _cleanup_(json_object_putp) json_object *doc = json_tokener_parse(payload);
        if (!doc || !json_object_is_type(doc, json_type_object))
                return -EBADMSG;
        json_object_object_add(doc, "id", json_object_new_string(run->event_id));
        json_object_object_add(doc, "attempt", json_object_new_int((int) run->attempts + 1));
        const char *s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || asprintf(ret_text, "%s\n", s) < 0)
                return -ENOMEM;
        *ret_doc = TAKE_PTR(doc);
        return 0;
}

static void start(Notifier *n, size_t slot, const OutboxRow *row, size_t h) {
        const PolicyNotifyHook *hook = &n->policy->notify[h];
        _cleanup_(json_object_putp) json_object *doc = NULL;
        _cleanup_free_ char *text = NULL, *error = NULL;
        char **env = NULL;
        int r;

        Run *run = calloc(1, sizeof(Run));
        if (!run) {
                log_error("notify: out of memory starting a hook");
                return;
        }
        *run = (Run){
                .n = n,
                .row_id = row->id,
                .hook = strdup(row->hook),
                .command = strdup(hook->command),
                .hook_number = (unsigned) h,
                .event = strdup(row->event),
                .request_id = row->request_id,
                .attempts = row->attempts,
                .created_at = row->created_at,
                .timeout = hook->timeout,
                .retry = hook->retry,
                .pid = -1,
                .output_fd = -EBADF,
        };
        snprintf(run->event_id, sizeof(run->event_id), "%s-%" PRId64, n->prefix, row->id);
        n->runs[slot] = run;
        if (!run->hook || !run->command || !run->event) {
                finish(run, "out of memory");
                return;
        }

        r = document(run, row->payload, &doc, &text);
        if (r >= 0)
                r = notify_environment(doc, hook->user, &env);
        if (r < 0) {
                finish(run, r == -EBADMSG ? "its saved document is not JSON" : "out of memory");
                return;
        }
        NotifySpawn s = {
                .command = hook->command,
                .args = hook->args.items,
                .n_args = hook->args.n,
                .user = hook->user,
                .groups = hook->groups.items,
                .n_groups = hook->groups.n,
                .timeout = hook->timeout,
                .input = text,
                .env = env,
        };
        r = notify_spawn(&s, &run->pid, &run->output_fd, &error);
        notify_environment_free(env);
        if (r < 0) {
                finish(run, error ?: "cannot start it");
                return;
        }
        if ((r = sd_event_add_child(n->event, &run->child_source, run->pid, WEXITED, on_exit_hook,
                                    run)) < 0 ||
            (r = sd_event_add_io(n->event, &run->output_source, run->output_fd, EPOLLIN, on_output,
                                 run)) < 0 ||
            (r = sd_event_add_time_relative(n->event, &run->timer_source, CLOCK_MONOTONIC,
                                            hook->timeout * USEC_PER_SEC, USEC_PER_MSEC, on_timeout,
                                            run)) < 0) {
                log_error_errno(r, "notify: watching hook %s: %m", hook->command);
                (void) kill(-run->pid, SIGKILL);
                (void) waitpid(run->pid, NULL, 0);
                finish(run, "cannot watch it");
                return;
        }
        log_debug("notify: hook %s started for event %s of request %" PRId64 " (%s), pid %d",
                  run->command, run->event, run->request_id, run->event_id, (int) run->pid);
}

/* ---- choosing what runs ---- */

static bool hook_busy(const Notifier *n, const char *identity) {
        for (size_t i = 0; i < NOTIFY_RUNNING_MAX; i++)
                if (n->runs[i] && STREQ(n->runs[i]->hook, identity))
                        return true;
        return false;
}

static void arm(Notifier *n, uint64_t delay) {
        if (delay == UINT64_MAX) {
                (void) sd_event_source_set_enabled(n->timer, SD_EVENT_OFF);
                return;
        }
        /* Wall-clock time decides when a row is due; a jump never makes the wait longer
         * than the longest backoff. */
        if (delay > NOTIFY_BACKOFF_MAX_USEC)
                delay = NOTIFY_BACKOFF_MAX_USEC;
        (void) sd_event_source_set_time(n->timer, now_usec(CLOCK_MONOTONIC) + delay);
        (void) sd_event_source_set_enabled(n->timer, SD_EVENT_ONESHOT);
}

static void pick(Notifier *n) {
        _cleanup_free_ int64_t *ids = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME), mono = now_usec(CLOCK_MONOTONIC);
        uint64_t delay = UINT64_MAX, next;
        size_t n_ids = 0;
        int r;

        n->dirty = false;
        if (!n->policy || n->n_hooks == 0) {
                arm(n, UINT64_MAX);
                return;
        }
        if ((r = outbox_due_per_hook(n->db, now, &ids, &n_ids)) < 0) {
                log_error_errno(r, "notify: reading the outbox: %m (%s); trying again in 5s",
                                db_error(n->db));
                arm(n, 5 * USEC_PER_SEC);
                return;
        }
        for (size_t i = 0; i < n_ids; i++) {
                OutboxRow row = {};
                size_t slot = 0;
                while (slot < NOTIFY_RUNNING_MAX && n->runs[slot])
                        slot++;
                if (slot == NOTIFY_RUNNING_MAX)
                        break; /* picked again when one ends */
                if (outbox_get(n->db, ids[i], &row) < 0)
                        continue;
                ssize_t h = hook_index(n, row.hook, row.hook_index);
                if (h >= 0 && !hook_busy(n, row.hook)) {
                        if (n->paused_until[h] > mono) {
                                if (n->paused_until[h] - mono < delay)
                                        delay = n->paused_until[h] - mono;
                        } else
                                start(n, slot, &row, (size_t) h);
                }
                outbox_row_done(&row);
        }
        if ((r = outbox_next_due(n->db, now, &next)) > 0 && next - now < delay)
                delay = next - now;
        arm(n, delay);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        pick(userdata);
        return 0;
}

static int on_defer(sd_event_source *s, void *userdata) {
        pick(userdata);
        return 0;
}

void notifier_kick(Notifier *n) {
        if (n && n->dirty)
                pick(n);
}

int notifier_stage(Notifier *n, Grants *g) {
        int r = outbox_stage(g->db, g->policy, g->effects, g->now(CLOCK_REALTIME));
        if (r > 0 && n)
                n->dirty = true;
        return r < 0 ? r : 0;
}

/* ---- the policy ---- */

/* The command of a hook identity, for messages (never its arguments). */
static char *identity_command(const char *identity) {
        _cleanup_(json_object_putp) json_object *a = json_tokener_parse(identity);
        const char *c = a && json_object_is_type(a, json_type_array)
                                ? json_object_get_string(json_object_array_get_idx(a, 0))
                                : NULL;
        return strdup(c ?: "(unknown)");
}

static void drop_orphans(Notifier *n) {
        char **hooks = NULL;
        int64_t *counts = NULL;
        size_t k = 0;
        int r = outbox_hooks(n->db, &hooks, &counts, &k);
        if (r < 0) {
                log_error_errno(r, "notify: reading the outbox: %m (%s)", db_error(n->db));
                return;
        }
        for (size_t i = 0; i < k; i++) {
                if (hook_index(n, hooks[i], 0) >= 0)
                        continue;
                _cleanup_free_ char *command = identity_command(hooks[i]);
                char hook_field[2048], count_field[64];
                r = outbox_drop_hook(n->db, hooks[i]);
                if (r < 0) {
                        log_error_errno(r, "notify: dropping the notifications of hook %s: %m (%s)",
                                        command ?: "?", db_error(n->db));
                        continue;
                }
                snprintf(hook_field, sizeof(hook_field), "JIT_NOTIFY_HOOK=%s", command ?: "?");
                snprintf(count_field, sizeof(count_field), "JIT_NOTIFY_DROPPED=%d", r);
                const char *fields[] = { hook_field, count_field, NULL };
                log_event(JIT_EVENT_NOTIFY_DROPPED, LOG_WARNING, NULL, "broker", fields,
                          "%d undelivered notification%s for hook %s dropped: the policy no "
                          "longer has a hook with its command and args",
                          r, r == 1 ? "" : "s", command ?: "?");
        }
        outbox_hooks_free(hooks, counts, k);
}

static void identities_free(Notifier *n) {
        for (size_t i = 0; i < n->n_hooks; i++)
                free(n->identities[i]);
        free(n->identities);
        free(n->paused_until);
        n->identities = NULL;
        n->paused_until = NULL;
        n->n_hooks = 0;
}

void notifier_set_policy(Notifier *n, const Policy *p) {
        identities_free(n);
        n->policy = p;
        size_t k = p ? p->n_notify : 0;
        n->identities = calloc(k + 1, sizeof(char *));
        n->paused_until = calloc(k + 1, sizeof(uint64_t));
        bool ok = n->identities && n->paused_until;
        for (size_t i = 0; ok && i < k; i++) {
                ok = (n->identities[i] = outbox_hook_identity(&p->notify[i]));
                n->n_hooks += ok;
        }
        if (!ok) {
                /* Delivery waits for the next reload; nothing is dropped meanwhile. */
                log_error("notify: out of memory taking the policy's hooks; nothing is "
                          "delivered until the next reload");
                identities_free(n);
                n->policy = NULL;
                return;
        }
        drop_orphans(n);
        n->dirty = true;
}

/* ---- setup ---- */

int notifier_new(sd_event *e, BrokerDb *db, Notifier **ret) {
        _cleanup_free_ Notifier *n = calloc(1, sizeof(Notifier));
        AuditHead head;
        int rows = 0, r;

        if (!n)
                return -ENOMEM;
        n->event = e;
        n->db = db;
        n->dirty = true;
        if (audit_store_anchor(db_sqlite(db), n->prefix, &head, &rows) < 0 || rows != 1 ||
            !n->prefix[0])
                snprintf(n->prefix, sizeof(n->prefix), "jit");
        if ((r = sd_event_add_time(e, &n->timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
                                   on_timer, n)) < 0)
                return r;
        (void) sd_event_source_set_enabled(n->timer, SD_EVENT_OFF);
        if ((r = sd_event_add_defer(e, &n->defer, on_defer, n)) < 0) {
                sd_event_source_disable_unref(n->timer);
                return r;
        }
        (void) sd_event_source_set_enabled(n->defer, SD_EVENT_OFF);
        *ret = TAKE_PTR(n);
        return 0;
}

Notifier *notifier_free(Notifier *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < NOTIFY_RUNNING_MAX; i++) {
                Run *run = n->runs[i];
                if (!run)
                        continue;
                run->child_source = sd_event_source_disable_unref(run->child_source);
                if (run->pid > 0) {
                        (void) kill(-run->pid, SIGKILL);
                        (void) waitpid(run->pid, NULL, 0);
                }
                log_info("notify: hook %s stopped with the broker; event %s of request %" PRId64
                         " (%s) is delivered again at the next start",
                         run->command, run->event, run->request_id, run->event_id);
                run_free(run);
                n->runs[i] = NULL;
        }
        sd_event_source_disable_unref(n->timer);
        sd_event_source_disable_unref(n->defer);
        identities_free(n);
        free(n);
        return NULL;
}
