/* SPDX-License-Identifier: MIT */
/* The command patterns of the policy's rules (commands = ["/usr/bin/systemctl restart *"]):
 * parsed once, matched against the argv of a command line, without a shell.
 *
 * A pattern is words separated by spaces; a word may be written in single quotes to hold
 * spaces ('two words'), and a word with quotes in it is matched literally, its stars
 * included ('*'); nothing else is special to the splitting. The first word is the
 * program's absolute path, matched exactly. Each further word matches one argument:
 *   literal   the argument, byte for byte;
 *   *         any one argument;
 *   a*b       an argument of that shape, where each * stands for characters other than '/'
 *             (so that "/var/log/" followed by a star never reaches into another directory);
 *   **        as the last word only: any further arguments, none included.
 * A pattern of the path alone matches the program run without arguments. argv[0] is not
 * matched (sudo passes the name it was called by).
 *
 * Refused when parsed, because they would allow more than they seem to: a wildcard in the
 * path, a word holding ".." as a path component with a wildcard in it, "**" anywhere but
 * last, an empty word, unbalanced quotes, control or invisible characters. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define JIT_COMMAND_PATTERN_MAX 4096
#define JIT_COMMAND_PATTERN_WORDS 256

typedef struct CommandPattern {
        char *text;    /* as written */
        char *path;    /* the first word */
        char **args;   /* the other words, unquoted */
        bool *literal; /* args[i] was quoted: no wildcards in it */
        size_t n_args;
        bool rest; /* ended with **: any further arguments */
} CommandPattern;

/* Parses text into *ret. 0, or -EINVAL with *ret_why (static text) saying what is wrong. */
int command_pattern_parse(const char *text, CommandPattern *ret, const char **ret_why);
void command_pattern_done(CommandPattern *p);

/* Whether the command (absolute path) with argv (NULL-terminated, argv[0] not matched)
 * matches p. */
bool command_pattern_match(const CommandPattern *p, const char *command, const char *const *argv);
