/* SPDX-License-Identifier: MIT */
#include "command-match.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "command-line.h"
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

/* Whether word has ".." as a path component. */
static bool has_dotdot(const char *w) {
        for (const char *p = w; (p = strstr(p, "..")); p += 2)
                if ((p == w || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
                        return true;
        return false;
}

int command_pattern_parse(const char *text, CommandPattern *ret, const char **ret_why) {
        _cleanup_(command_pattern_done) CommandPattern p = {};
        char **words = NULL;
        bool *quoted = NULL;
        size_t n;
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
        r = jit_words_split(text, JIT_COMMAND_PATTERN_WORDS + 1, &words, &quoted, &n, ret_why);
        if (r < 0)
                return r;
        if (!(p.text = strdup(text)))
                r = -ENOMEM;
        else if (n == 0)
                *ret_why = "empty", r = -EINVAL;
        else if (words[0][0] != '/')
                *ret_why = "the program must be an absolute path", r = -EINVAL;
        else if (strpbrk(words[0], "*?["))
                *ret_why = "a wildcard in the program's path would allow programs nobody named",
                r = -EINVAL;
        else if (has_dotdot(words[0]))
                *ret_why = "the program's path holds \"..\"", r = -EINVAL;
        for (size_t i = 1; r == 0 && i < n; i++) {
                const char *w = words[i];
                if (p.rest)
                        *ret_why = "\"**\" may only be the last word", r = -EINVAL;
                else if (!quoted[i] && strcmp(w, "**") == 0)
                        p.rest = true;
                else if (!quoted[i] && strstr(w, "**"))
                        *ret_why = "\"**\" stands alone, as the last word", r = -EINVAL;
                else if (!quoted[i] && strchr(w, '*') && has_dotdot(w))
                        *ret_why = "a wildcard next to \"..\" would reach outside the directory "
                                   "it names",
                        r = -EINVAL;
        }
        if (r < 0) {
                jit_words_free(words);
                free(quoted);
                return r;
        }
        /* The words become the pattern's: the path, then the arguments (** left out). */
        p.path = words[0];
        p.n_args = n - 1 - (p.rest ? 1 : 0);
        if (p.rest)
                free(words[n - 1]);
        memmove(words, words + 1, p.n_args * sizeof(char *));
        words[p.n_args] = NULL;
        p.args = words;
        memmove(quoted, quoted + 1, p.n_args * sizeof(bool));
        p.literal = quoted;
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
