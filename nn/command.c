/*
 * command.c - the training command line a model file records: joined as a POSIX shell would
 * take it back, split again for --resume, and its public form without the machine's paths.
 *
 * Design: one quoting rule both ways (a word with any character outside a safe set is put in
 * single quotes, a quote inside written '\''), so that split(join(argv)) == argv. The public
 * form rewrites every absolute path (a word, or the value of a --flag=value word, that starts
 * with '/'): relative to the working directory when it lies inside it, else its last
 * component. A command copied from GET /models then still says which files were used
 * (--data data/mnist, --init shipped-11.model) without the directories of the machine that
 * trained it (user names, temporary folders).
 */
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 256

/* arg as a shell word appended at buf + *used (len > *used); cut short, still terminated. */
static void put_word(char *buf, size_t len, size_t *used, const char *arg)
{
    const char *safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=.,:/@%";
    int quote = !*arg || arg[strspn(arg, safe)] != '\0';
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (*used + 1 < len)                                                                       \
            buf[(*used)++] = (c);                                                                  \
    } while (0)
    if (quote)
        PUT('\'');
    for (const char *c = arg; *c; c++) {
        if (*c == '\'') {
            PUT('\'');
            PUT('\\');
            PUT('\'');
        }
        PUT(*c);
    }
    if (quote)
        PUT('\'');
#undef PUT
    buf[*used] = '\0';
}

void nn_command_join(char *buf, size_t len, int argc, char *const *argv)
{
    size_t used = 0;
    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < argc && used + 1 < len; i++) {
        if (i)
            buf[used++] = ' ', buf[used] = '\0';
        put_word(buf, len, &used, argv[i]);
    }
}

int nn_command_split(char *cmd, char **av, int max)
{
    int n = 0;
    char *r = cmd, *w = cmd;
    if (max < 1)
        return 0;
    while (n < max - 1) {
        while (*r == ' ')
            r++;
        if (!*r)
            break;
        av[n++] = w;
        while (*r && *r != ' ') {
            if (*r == '\'') {
                for (r++; *r && *r != '\''; r++)
                    *w++ = *r;
                if (*r)
                    r++;
            } else if (*r == '\\' && r[1]) {
                *w++ = r[1];
                r += 2;
            } else {
                *w++ = *r++;
            }
        }
        if (*r)
            r++;
        *w++ = '\0';
    }
    av[n] = NULL;
    return n;
}

/* The public form of the absolute path p (p[0] == '/') into out (outlen > 0). */
static void public_path(char *out, size_t outlen, const char *p, const char *cwd)
{
    size_t n = strlen(p), c = cwd ? strlen(cwd) : 0;
    while (c > 1 && cwd[c - 1] == '/') /* "/work/" is the folder "/work" */
        c--;
    if (c > 1 && !strncmp(p, cwd, c) && (p[c] == '/' || p[c] == '\0')) {
        const char *rest = p + c;
        while (*rest == '/')
            rest++;
        snprintf(out, outlen, "%s", *rest ? rest : ".");
        return;
    }
    while (n > 1 && p[n - 1] == '/') /* "/tmp/x/" names x */
        n--;
    size_t start = n;
    while (start > 0 && p[start - 1] != '/')
        start--;
    if (start == n) /* "/" itself says nothing about the machine */
        snprintf(out, outlen, "/");
    else
        snprintf(out, outlen, "%.*s", (int)(n - start), p + start);
}

int nn_command_public(char *out, size_t outlen, const char *cmd, const char *cwd)
{
    char *copy, *av[MAX_WORDS], word[1024];
    size_t used = 0;
    int n;

    if (!out || outlen == 0 || !cmd)
        return NN_EINVAL;
    out[0] = '\0';
    copy = strdup(cmd);
    if (!copy)
        return NN_ENOMEM;
    n = nn_command_split(copy, av, MAX_WORDS);
    for (int i = 0; i < n && used + 1 < outlen; i++) {
        const char *a = av[i], *eq = strchr(a, '=');
        if (a[0] == '/') {
            public_path(word, sizeof word, a, cwd);
        } else if (a[0] == '-' && a[1] == '-' && eq && eq[1] == '/') { /* --data=/x/mnist */
            size_t k = (size_t)(eq - a) + 1;
            if (k >= sizeof word)
                k = sizeof word - 1;
            memcpy(word, a, k);
            public_path(word + k, sizeof word - k, eq + 1, cwd);
        } else {
            snprintf(word, sizeof word, "%s", a);
        }
        if (i)
            out[used++] = ' ', out[used] = '\0';
        put_word(out, outlen, &used, word);
    }
    free(copy);
    return NN_OK;
}
