/* SPDX-License-Identifier: MIT */
/* jit-brokerd: holds requests and grants, answers the PAM module, expires grants. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "broker-audit.h"
#include "broker-journal.h"
#include "broker-sessions.h"
#include "broker.h"
#include "cleanup.h"
#include "config.h"
#include "duration.h"
#include "grant.h"
#include "timeutil.h"

/* How often the audit head goes to journald when it moved. */
#define AUDIT_HEAD_INTERVAL_USEC (60 * USEC_PER_SEC)

static int read_boot_id(char buf[BOOT_ID_MAX]) {
        _cleanup_close_ int fd =
                open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, BOOT_ID_MAX - 1);
        if (n < 32)
                return n < 0 ? -errno : -EIO;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

static void update_status(Broker *b) {
        unsigned active = 0, pending = 0;
        if (db_count_open(b->db, (uid_t) -1, &active, &pending) < 0) {
                sd_notify(false, "STATUS=Database unreadable; denying everything");
                return;
        }
        sd_notifyf(false, "STATUS=%u active grant%s, %u pending", active, active == 1 ? "" : "s",
                   pending);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) grant_end_due(&b->grants);
        effects_changed(&b->effects);
        return 0;
}

/* What follows committed changes, once per loop iteration: their journald entries, the
 * sessions of grants that ended, then the timers and the STATUS line. */
static void run_effects(Broker *b) {
        size_t n;
        Effect *due = effects_take_due(&b->effects, &n);
        for (size_t i = 0; i < n; i++) {
                const Effect *e = &due[i];
                const char *fields[] = { e->field, NULL };
                log_event(e->event, e->priority, e->request, e->actor, fields, "%s", e->message);
                if (e->ends_grant && e->request)
                        sessions_grant_ended(b, e->request);
        }
        effects_free(due, n);
        if (b->effects.state_changed) {
                b->effects.state_changed = false;
                broker_state_changed(b);
        }
}

static int on_effects(sd_event_source *s, void *userdata) {
        run_effects(userdata);
        return 0;
}

static void effects_wakeup(void *userdata) {
        Broker *b = userdata;
        (void) sd_event_source_set_enabled(b->effects_source, SD_EVENT_ONESHOT);
}

static void report_failure(void *userdata, int error, const char *what, int64_t id) {
        Broker *b = userdata;
        if (id > 0)
                log_error_errno(error, "%s %lld: %m (%s)", what, (long long) id, db_error(b->db));
        else
                log_error_errno(error, "%s: %m (%s)", what, db_error(b->db));
}

void broker_state_changed(Broker *b) {
        uint64_t next;
        int r = db_next_deadline(b->db, b->boot_id, &next);

        if (r < 0) {
                log_error_errno(r, "finding the next deadline: %m; retrying in 1 s");
                next = now_usec(CLOCK_BOOTTIME) + USEC_PER_SEC;
        }
        if (r == 0) {
                (void) sd_event_source_set_enabled(b->deadline_timer, SD_EVENT_OFF);
        } else {
                /* CLOCK_BOOTTIME keeps counting through suspend and ignores wall-clock jumps. */
                (void) sd_event_source_set_time(b->deadline_timer, next);
                (void) sd_event_source_set_enabled(b->deadline_timer, SD_EVENT_ONESHOT);
        }

        uint64_t warn_at;
        sessions_warn(b, &warn_at);
        if (warn_at == 0)
                (void) sd_event_source_set_enabled(b->warning_timer, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(b->warning_timer, warn_at);
                (void) sd_event_source_set_enabled(b->warning_timer, SD_EVENT_ONESHOT);
        }
        update_status(b);
}

static int on_warning(sd_event_source *s, uint64_t usec, void *userdata) {
        broker_state_changed(userdata); /* sends what is due, arms the next */
        return 0;
}

/* Policy loads and broker start/stop are events of their own in the audit log. */
static void audit_policy(Broker *b, JitEvent ev, const char *error) {
        json_object *d = json_object_new_object();
        if (d) {
                json_object_object_add(d, "policy", json_object_new_string(b->policy_path));
                if (b->policy)
                        json_object_object_add(d, "policy_version",
                                               json_object_new_string(b->policy->hash));
                if (error)
                        json_object_object_add(d, "error", json_object_new_string(error));
        }
        int r = audit_append(b->db, ev, "broker", -1, 0, d);
        if (r < 0)
                log_error_errno(r, "writing the audit record for %s: %m", jit_event_name(ev));
        audit_log_head(b, false);
}

static int on_audit_head_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        audit_log_head(b, false);
        /* Retention is checked on the same beat; a day's records move at most once a minute. */
        audit_apply_retention(b);
        (void) sd_event_source_set_time_relative(s, AUDIT_HEAD_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int load_policy(Broker *b, bool initial) {
        Policy *p = NULL;
        _cleanup_free_ char *error = NULL;
        char path_field[4200];
        snprintf(path_field, sizeof(path_field), "JIT_POLICY=%s", b->policy_path);
        const char *fields[] = { path_field, NULL };

        int r = policy_load(b->policy_path, &p, &error);
        if (r < 0) {
                if (error)
                        log_event(JIT_EVENT_POLICY_REJECTED, LOG_ERR, NULL, "broker", fields,
                                  "%s: %s",
                                  initial ? "cannot load the policy"
                                          : "policy rejected, keeping the old one",
                                  error);
                else
                        log_event(JIT_EVENT_POLICY_REJECTED, LOG_ERR, NULL, "broker", fields,
                                  "%s: %s: %s",
                                  initial ? "cannot load the policy"
                                          : "policy rejected, keeping the old one",
                                  b->policy_path, strerror(-r));
                if (b->db)
                        audit_policy(b, JIT_EVENT_POLICY_REJECTED, error);
                return r;
        }
        policy_free(b->policy);
        b->policy = p;
        b->grants.policy = p;
        char version_field[128];
        snprintf(version_field, sizeof(version_field), "JIT_POLICY_VERSION=%s", p->hash);
        const char *loaded_fields[] = { path_field, version_field, NULL };
        log_event(JIT_EVENT_POLICY_LOADED, LOG_INFO, NULL, "broker", loaded_fields,
                  "policy %s loaded: %zu rule%s, version %.12s", b->policy_path, p->n_rules,
                  p->n_rules == 1 ? "" : "s", p->hash);
        for (size_t i = 0; i < p->n_warnings; i++)
                log_warning("policy warning: %s", p->warnings[i]);
        if (b->db)
                audit_policy(b, JIT_EVENT_POLICY_LOADED, NULL);
        if (!initial)
                grant_withdraw_disallowed(&b->grants);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Broker *b = userdata;
        sd_notify(false, "RELOADING=1");
        (void) load_policy(b, false);
        sd_notify(false, "READY=1");
        update_status(b);
        return 0;
}

static void help(void) {
        printf("Usage: jit-brokerd [OPTIONS]\n\n"
               "The jit access broker: holds requests and grants, answers pam_jit.so.\n\n"
               "  -s --socket PATH   listening socket (default %s; ignored under socket activation)\n"
               "  -d --db PATH       state database (default %s)\n"
               "  -p --policy PATH   policy file (default %s)\n"
               "     --log-level LEVEL\n"
               "                     diagnostics up to LEVEL: emerg, alert, crit, err, warning,\n"
               "                     notice, info (default; also $SYSTEMD_LOG_LEVEL), debug, or\n"
               "                     0-7; events (the audit trail) are always logged\n"
               "  -h --help          show this help\n"
               "     --version       show the version\n",
               JIT_SOCKET_PATH, JIT_DB_PATH, JIT_POLICY_PATH);
}

#define LOG_LEVEL_NAMES "emerg, alert, crit, err, warning, notice, info, debug or 0-7"

static int parse_argv(int argc, char *argv[], Broker *b) {
        enum {
                ARG_VERSION = 0x100,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "db", required_argument, NULL, 'd' },
                { "policy", required_argument, NULL, 'p' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, level = -1;

        while ((c = getopt_long(argc, argv, "s:d:p:h", options, NULL)) >= 0)
                switch (c) {
                case 's':
                case 'd':
                case 'p': {
                        if (optarg[0] != '/') {
                                fprintf(stderr,
                                        "jit-brokerd: --%s needs an absolute path, got '%s'\n",
                                        c == 's'   ? "socket"
                                        : c == 'd' ? "db"
                                                   : "policy",
                                        optarg);
                                return -EINVAL;
                        }
                        char **field = c == 's'   ? &b->socket_path
                                       : c == 'd' ? &b->db_path
                                                  : &b->policy_path;
                        free(*field);
                        *field = strdup(optarg);
                        if (!*field)
                                return -ENOMEM;
                        break;
                }
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                fprintf(stderr,
                                        "jit-brokerd: invalid --log-level '%s' (" LOG_LEVEL_NAMES
                                        ")\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("jit-brokerd %s\n", JIT_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'jit-brokerd --help'.\n");
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr,
                        "jit-brokerd: unexpected argument '%s'\nTry 'jit-brokerd --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        /* The option wins over the environment, as in systemd's own programs. */
        const char *e = level < 0 ? secure_getenv("SYSTEMD_LOG_LEVEL") : NULL;
        if (e && *e) {
                level = log_level_from_string(e);
                if (level < 0) {
                        fprintf(stderr,
                                "jit-brokerd: invalid log level '%s' in $SYSTEMD_LOG_LEVEL "
                                "(" LOG_LEVEL_NAMES ")\n",
                                e);
                        return -EINVAL;
                }
        }
        if (level >= 0)
                log_set_max_level(level);
        return 1;
}

static int ensure_parent_dir(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int main(int argc, char *argv[]) {
        Broker b = { .listen_fd = -EBADF };
        _cleanup_free_ char *db_error_msg = NULL;
        int r;

        umask(0077);
        r = parse_argv(argc, argv, &b);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (!b.socket_path)
                b.socket_path = strdup(JIT_SOCKET_PATH);
        if (!b.db_path)
                b.db_path = strdup(JIT_DB_PATH);
        if (!b.policy_path)
                b.policy_path = strdup(JIT_POLICY_PATH);
        if (!b.socket_path || !b.db_path || !b.policy_path)
                return 1;

        if ((r = read_boot_id(b.boot_id)) < 0) {
                log_error_errno(r, "reading the boot id: %m");
                return 1;
        }

        if ((r = load_policy(&b, true)) < 0)
                return 1;

        if ((r = ensure_parent_dir(b.db_path)) < 0) {
                log_error_errno(r, "creating the directory of %s: %m", b.db_path);
                return 1;
        }
        r = db_open(b.db_path, &b.db, &db_error_msg);
        if (r < 0) {
                log_error_errno(r, "opening the database: %s",
                                db_error_msg ? db_error_msg : strerror(-r));
                return 1;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if ((r = sd_event_default(&b.event)) < 0 ||
            (r = sd_event_add_signal(b.event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(b.event, NULL, SIGINT, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(b.event, NULL, SIGHUP, on_sighup, &b)) < 0 ||
            (r = sd_event_add_time(b.event, &b.deadline_timer, CLOCK_BOOTTIME, UINT64_MAX, 0,
                                   on_deadline, &b)) < 0 ||
            (r = sd_event_add_time(b.event, &b.warning_timer, CLOCK_BOOTTIME, UINT64_MAX, 0,
                                   on_warning, &b)) < 0 ||
            (r = sd_event_add_time_relative(b.event, &b.audit_head_timer, CLOCK_MONOTONIC,
                                            AUDIT_HEAD_INTERVAL_USEC, 0, on_audit_head_timer, &b)) <
                    0 ||
            (r = sd_event_add_defer(b.event, &b.effects_source, on_effects, &b)) < 0 ||
            (r = sd_event_set_watchdog(b.event, true)) < 0) {
                log_error_errno(r, "setting up the event loop: %m");
                return 1;
        }
        (void) sd_event_source_set_enabled(b.effects_source, SD_EVENT_OFF);
        b.effects = (EffectQueue){ .wakeup = effects_wakeup, .userdata = &b };
        b.grants = (Grants){
                .db = b.db,
                .policy = b.policy,
                .boot_id = b.boot_id,
                .effects = &b.effects,
                .now = now_usec,
                .report = report_failure,
                .report_userdata = &b,
        };
        /* Deadlines are ours to keep to the second, not the default 250 ms window. */
        (void) sd_event_source_set_time_accuracy(b.deadline_timer, 1);

        /* The start, and the policy it starts with, open this run's part of the audit log. */
        audit_policy(&b, JIT_EVENT_STARTED, NULL);
        audit_policy(&b, JIT_EVENT_POLICY_LOADED, NULL);
        audit_apply_retention(&b);
        audit_log_head(&b, true);

        /* Whatever expired while no broker ran ends now, before the first check is answered;
         * then the sessions still running are held again, and those of ended grants end. */
        (void) grant_end_due(&b.grants);
        run_effects(&b);
        sessions_restore(&b);

        if ((r = broker_listen(&b)) < 0)
                return 1;

        broker_state_changed(&b);
        char sock_field[4200];
        snprintf(sock_field, sizeof(sock_field), "JIT_SOCKET=%s", b.socket_path);
        const char *fields[] = { sock_field, NULL };
        log_event(JIT_EVENT_STARTED, LOG_INFO, NULL, "broker", fields,
                  "jit-brokerd %s started on %s", JIT_VERSION, b.socket_path);
        sd_notify(false, "READY=1");
        update_status(&b);

        r = sd_event_loop(b.event);

        sd_notify(false, "STOPPING=1");
        log_event(JIT_EVENT_STOPPING, LOG_INFO, NULL, "broker", NULL, "jit-brokerd stopping");
        broker_stop_listening(&b);
        audit_policy(&b, JIT_EVENT_STOPPING, NULL);
        audit_log_head(&b, true);
        sd_event_source_disable_unref(b.audit_head_timer);
        sd_event_source_disable_unref(b.warning_timer);
        sessions_free_all(&b);
        sd_event_source_disable_unref(b.deadline_timer);
        run_effects(&b); /* what the last changes owe the journal */
        sd_event_source_disable_unref(b.effects_source);
        effect_queue_done(&b.effects);
        sd_event_unref(b.event);
        db_close(b.db);
        policy_free(b.policy);
        free(b.socket_path);
        free(b.db_path);
        free(b.policy_path);
        return r < 0 ? 1 : 0;
}
