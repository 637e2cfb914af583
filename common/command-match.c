/* SPDX-License-Identifier: MIT */
#include "command-match.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "protocol.h"

void command_pattern_done(CommandPattern *p) {
        if (!p)
                return;
        free(p->text);
        free(p->path);
        for (size_t i = 0; i < p->n_args; i++)
                free(p->args[i]);
        free(p->args);
        free(p->literal);
        *p = (CommandPattern){};
}

/* The next word of *s into a new string: 1, 0 at the end, or -EINVAL (*why). */
static int next_word(const char **s, char **ret, bool *ret_quoted, const char **why) {
        const char *p = *s;
        while (*p == ' ')
                p++;
        if (!*p)
                return 0;
        size_t n = strlen(p);
        char *w = malloc(n + 1), *o = w;
        bool quoted = false;
        if (!w)
                return -ENOMEM;
        while (*p && *p != ' ') {
                if (*p == '\'') {
                        const char *end = strchr(p + 1, '\'');
                        if (!end) {
                                free(w);
                                *why = "a quote is not closed";
                                return -EINVAL;
                        }
                        memcpy(o, p + 1, (size_t) (end - p - 1));
                        o += end - p - 1;
                        p = end + 1;
                        quoted = true;
                } else
                        *o++ = *p++;
        }
        *o = '\0';
        if (!*w) {
                free(w);
                *why = "an empty word ('')";
                return -EINVAL;
        }
        *s = p;
        *ret = w;
        *ret_quoted = quoted;
        return 1;
}

/* Whether word has ".." as a path component. */
static bool has_dotdot(const char *w) {
        for (const char *p = w; (p = strstr(p, "..")); p += 2)
                if ((p == w || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
                        return true;
        return false;
}

int command_pattern_parse(const char *text, CommandPattern *ret, const char **ret_why) {
        _cleanup_(command_pattern_done) CommandPattern p = {};
        const char *why = NULL, *s = text;
        int r;

        *ret_why = NULL;
        size_t len = strnlen(text, JIT_COMMAND_PATTERN_MAX + 1);
        if (len > JIT_COMMAND_PATTERN_MAX) {
                *ret_why = "longer than 4096 bytes";
                return -EINVAL;
        }
        if (!jit_text_is_safe(text, len)) {
                *ret_why = "holds control, invisible or reordering characters";
                return -EINVAL;
        }
        if (!(p.text = strdup(text)))
                return -ENOMEM;
        bool quoted;
        r = next_word(&s, &p.path, &quoted, &why);
        if (r <= 0) {
                *ret_why = r == 0 ? "empty" : why;
                return r == 0 ? -EINVAL : r;
        }
        if (p.path[0] != '/') {
                *ret_why = "the program must be an absolute path";
                return -EINVAL;
        }
        if (strchr(p.path, '*') || strchr(p.path, '?') || strchr(p.path, '[')) {
                *ret_why = "a wildcard in the program's path would allow programs nobody named";
                return -EINVAL;
        }
        if (has_dotdot(p.path)) {
                *ret_why = "the program's path holds \"..\"";
                return -EINVAL;
        }
        for (;;) {
                char *w;
                r = next_word(&s, &w, &quoted, &why);
                if (r < 0) {
                        *ret_why = why;
                        return r;
                }
                if (r == 0)
                        break;
                if (p.rest) {
                        free(w);
                        *ret_why = "\"**\" may only be the last word";
                        return -EINVAL;
                }
                if (!quoted && strcmp(w, "**") == 0) {
                        free(w);
                        p.rest = true;
                        continue;
                }
                if (!quoted && strstr(w, "**")) {
                        free(w);
                        *ret_why = "\"**\" stands alone, as the last word";
                        return -EINVAL;
                }
                if (!quoted && strchr(w, '*') && has_dotdot(w)) {
                        free(w);
                        *ret_why = "a wildcard next to \"..\" would reach outside the directory "
                                   "it names";
                        return -EINVAL;
                }
                if (p.n_args >= JIT_COMMAND_PATTERN_WORDS) {
                        free(w);
                        *ret_why = "more than 256 words";
                        return -EINVAL;
                }
                char **a = realloc(p.args, (p.n_args + 1) * sizeof(char *));
                if (a)
                        p.args = a;
                bool *l = a ? realloc(p.literal, (p.n_args + 1) * sizeof(bool)) : NULL;
                if (!l) {
                        free(w);
                        return -ENOMEM;
                }
                p.literal = l;
                p.literal[p.n_args] = quoted;
                p.args[p.n_args++] = w;
        }
        *ret = p;
        p = (CommandPattern){};
        return 0;
}

/* Whether arg matches word, where each * stands for any run of characters but '/'. */
static bool word_match(const char *word, const char *arg) {
        if (strcmp(word, "*") == 0)
                return true;
        /* Iterative glob with one backtrack point: linear in practice, no recursion. */
        const char *w = word, *a = arg, *star = NULL, *mark = NULL;
        while (*a) {
                if (*w == '*') {
                        star = w++;
                        mark = a;
                } else if (*w && *w == *a) {
                        w++;
                        a++;
                } else if (star && *mark != '/') {
                        w = star + 1;
                        a = ++mark;
                } else
                        return false;
        }
        while (*w == '*')
                w++;
        return *w == '\0';
}

bool command_pattern_match(const CommandPattern *p, const char *command, const char *const *argv) {
        if (!command || strcmp(p->path, command) != 0 || !argv || !argv[0])
                return false;
        size_t n = 0;
        while (argv[n + 1])
                n++;
        if (n < p->n_args || (n > p->n_args && !p->rest))
                return false;
        for (size_t i = 0; i < p->n_args; i++) {
                const char *arg = argv[i + 1];
                if (p->literal[i]) {
                        if (strcmp(p->args[i], arg) != 0)
                                return false;
                        continue;
                }
                if (!word_match(p->args[i], arg))
                        return false;
                /* A wildcard inside a word never matches a way out of its directory. */
                if (strchr(p->args[i], '*') && strcmp(p->args[i], "*") != 0 && has_dotdot(arg))
                        return false;
        }
        return true;
}
