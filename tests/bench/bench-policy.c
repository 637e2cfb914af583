/* SPDX-License-Identifier: MIT */
/* Benchmark: what loading and deciding cost as a policy grows, as ratios against baselines
 * measured in the same run (absolute times vary across machines; ratios should not).
 *
 *   meson test -C BUILD --benchmark --verbose bench-policy
 *
 * 1. policy_parse of a generated 1,000-rule policy against a 1-rule one (libconfig, the
 *    regexes, SHA-256, and NSS lookups of every distinct user and group, up to the
 *    parser's cap of 1,000), and of the same rules naming only four principals: the
 *    difference is what looking names up costs on this host (nss-systemd, sssd, ...).
 * 2. policy_decide by the last of 1,000 rules (999 explanations written) against by the
 *    first; and policy_match_at by the last rule (no explanations) against the same
 *    baseline, to show what the explanations cost.
 * Prints medians of ROUNDS runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#define RULES 1000

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), compare_u64);
        return v[n / 2];
}

/* A policy of n rules shaped like real ones: every rule for its own team and a user (or,
 * with !distinct, all for the same ones), a quarter with working-hours windows, a quarter
 * with a ticket pattern. The last rule is the only one for group "target". */
static char *generate(size_t n, bool distinct) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                abort();
        fputs("settings = { default_duration = \"1h\"; max_duration = \"8h\"; };\nrules = (\n", f);
        for (size_t i = 0; i < n; i++) {
                bool last = i == n - 1;
                fprintf(f, "  { name = \"rule-%zu\"; services = [\"sudo\", \"sshd\"];\n", i);
                if (last)
                        fputs("    requesters = [\"%target\"];\n", f);
                else if (distinct)
                        fprintf(f, "    requesters = [\"%%team-%zu\", \"user%zu\"];\n", i, i);
                else
                        fputs("    requesters = [\"%team\", \"user\"];\n", f);
                fprintf(f,
                        "    approvers = [\"%%leads-%zu\"]; approvals = 1; max_duration = \"2h\";",
                        distinct ? i % 50 : 0);
                if (i % 4 == 1)
                        fputs(" when = [\"Mon-Fri 08:00-20:00\", \"Sat 10:00-12:00\"];", f);
                if (i % 4 == 2)
                        fputs(" ticket_pattern = \"^OPS-[0-9]+$\";", f);
                fprintf(f, " }%s\n", last ? "" : ",");
        }
        fputs(");\n", f);
        if (fclose(f) != 0)
                abort();
        return buf;
}

static Policy *parse_or_die(const char *text) {
        Policy *p = NULL;
        char *error = NULL;

        if (policy_parse(text, strlen(text), "bench.conf", &p, &error) < 0) {
                fprintf(stderr, "bench-policy: %s\n", error ? error : "parse failed");
                exit(1);
        }
        return p;
}

static uint64_t time_parse(const char *text, size_t rounds) {
        uint64_t *t = calloc(rounds, sizeof(uint64_t));
        for (size_t i = 0; i < rounds; i++) {
                uint64_t start = now_ns();
                Policy *p = parse_or_die(text);
                t[i] = now_ns() - start;
                policy_free(p);
        }
        uint64_t m = median(t, rounds);
        free(t);
        return m;
}

static uint64_t time_decide(const Policy *p, const PolicyQuery *q, size_t rounds,
                            const char *expect_rule) {
        uint64_t *t = calloc(rounds, sizeof(uint64_t));
        for (size_t i = 0; i < rounds; i++) {
                PolicyDecision d;
                uint64_t start = now_ns();
                if (policy_decide(p, q, &d) < 0)
                        abort();
                t[i] = now_ns() - start;
                if (!d.rule || strcmp(d.rule->name, expect_rule) != 0) {
                        fprintf(stderr, "bench-policy: decided by %s, expected %s\n",
                                d.rule ? d.rule->name : "no rule", expect_rule);
                        exit(1);
                }
                policy_decision_done(&d);
        }
        uint64_t m = median(t, rounds);
        free(t);
        return m;
}

static uint64_t time_match(const Policy *p, const PolicyQuery *q, size_t rounds) {
        uint64_t *t = calloc(rounds, sizeof(uint64_t));
        for (size_t i = 0; i < rounds; i++) {
                uint64_t start = now_ns();
                if (!policy_match_at(p, q->requester, q->service, q->at))
                        abort();
                t[i] = now_ns() - start;
        }
        uint64_t m = median(t, rounds);
        free(t);
        return m;
}

int main(void) {
        char *small = generate(1, true), *big = generate(RULES, true);
        char *same = generate(RULES, false);
        time_t at;

        setenv("TZ", "UTC", 1);
        tzset();
        if (policy_time_parse("Mon 10:00", 0, &at) < 0)
                abort();

        uint64_t parse1 = time_parse(small, 2000);
        uint64_t parse_n = time_parse(big, 30);
        uint64_t parse_same = time_parse(same, 30);
        printf("parse, 1 rule:             %10.1f us  (2 names to look up)\n", parse1 / 1e3);
        printf("parse, %d rules:        %10.1f us  ratio %.0fx  "
               "(%zu KiB, %d names: the first 1000 looked up)\n",
               RULES, parse_n / 1e3, (double) parse_n / (double) parse1, strlen(big) / 1024,
               2 * RULES);
        printf("parse, %d rules:        %10.1f us  ratio %.0fx  (the same rules naming 4 names)\n",
               RULES, parse_same / 1e3, (double) parse_same / (double) parse1);

        Policy *p = parse_or_die(big);
        char *first_groups[] = { (char *) "team-0" }, *last_groups[] = { (char *) "target" };
        Identity first = { .name = (char *) "someone", .groups = first_groups, .n_groups = 1 };
        Identity last = { .name = (char *) "someone", .groups = last_groups, .n_groups = 1 };
        PolicyQuery q1 = { .requester = &first, .service = "sudo", .at = at };
        PolicyQuery qn = { .requester = &last, .service = "sudo", .at = at };

        uint64_t decide1 = time_decide(p, &q1, 20000, "rule-0");
        uint64_t decide_n = time_decide(p, &qn, 2000, "rule-999");
        uint64_t match_n = time_match(p, &qn, 2000);
        printf("decide, first rule:        %10.2f us\n", decide1 / 1e3);
        printf("decide, rule %d:         %10.2f us  ratio %.0fx (with %d explanations)\n", RULES,
               decide_n / 1e3, (double) decide_n / (double) decide1, RULES - 1);
        printf("match_at, rule %d:       %10.2f us  ratio %.0fx (no explanations)\n", RULES,
               match_n / 1e3, (double) match_n / (double) decide1);

        policy_free(p);
        free(small);
        free(big);
        free(same);
        return 0;
}
