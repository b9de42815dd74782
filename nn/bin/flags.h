/*
 * flags.h - one way for the programs beside libnn (digits-train, digits-eval, and the test
 * tool make-sets) to read their flags with getopt_long, and one style of error for bad ones:
 *
 *   PROG: unknown flag --x (see PROG --help)
 *   PROG: unknown flag --hid (see PROG --help; did you mean --hidden?)
 *   PROG: --x needs a value (see PROG --help)
 *
 * and exit status 2 for all of them, as digits-server says and does. Flags are taken by their
 * whole name only: getopt_long alone would take "--hid" for "--hidden", so that a flag added
 * later could change what an old command line means. Header-only: the programs are small and
 * share nothing else; libnn does not use it.
 */
#ifndef NN_BIN_FLAGS_H
#define NN_BIN_FLAGS_H

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* The long option named exactly name (n bytes), or NULL. */
static inline const struct option *flags_find(const struct option *longopts, const char *name,
                                              size_t n)
{
    for (const struct option *o = longopts; o->name; o++)
        if (strlen(o->name) == n && !strncmp(o->name, name, n))
            return o;
    return NULL;
}

/* Checks that every "--name" in argv (up to a "--") is a whole flag name; prints the error
 * and returns -1 for the first that is not, naming the flag it abbreviates if there is one. */
static inline int flags_exact(int argc, char **argv, const struct option *longopts,
                              const char *prog)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (strncmp(a, "--", 2) != 0)
            continue;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const struct option *o = flags_find(longopts, name, n);
        if (o) {
            if (o->has_arg == required_argument && !eq)
                i++; /* its value, whatever it looks like */
            continue;
        }
        const struct option *like = NULL;
        int count = 0;
        for (const struct option *p = longopts; p->name && n > 0; p++)
            if (!strncmp(p->name, name, n))
                like = p, count++;
        if (count == 1)
            fprintf(stderr, "%s: unknown flag --%.*s (see %s --help; did you mean --%s?)\n",
                    prog, (int)n, name, prog, like->name);
        else
            fprintf(stderr, "%s: unknown flag --%.*s (see %s --help)\n", prog, (int)n, name,
                    prog);
        return -1;
    }
    return 0;
}

/* getopt_long with the errors above: returns the next option, -1 at the end, or '?' after
 * printing what was wrong (the caller exits 2). shortopts as for getopt_long, without a
 * leading ':'. Call flags_exact first. */
static inline int flags_next(int argc, char **argv, const char *shortopts,
                             const struct option *longopts, int *longindex, const char *prog)
{
    char spec[64];
    snprintf(spec, sizeof spec, ":%s", shortopts);
    int saved = opterr;
    opterr = 0;
    int before = optind;
    int opt = getopt_long(argc, argv, spec, longopts, longindex);
    opterr = saved;
    if (opt != ':' && opt != '?')
        return opt;
    const char *arg = before < argc ? argv[before] : "";
    if (optind > before && optind - 1 < argc)
        arg = argv[optind - 1];
    int is_long = arg[0] == '-' && arg[1] == '-';
    const char *eq = is_long ? strchr(arg, '=') : NULL;
    if (opt == ':' && is_long)
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", prog, arg, prog);
    else if (opt == ':')
        fprintf(stderr, "%s: -%c needs a value (see %s --help)\n", prog, optopt, prog);
    else if (is_long && eq)
        fprintf(stderr, "%s: %.*s takes no value (see %s --help)\n", prog, (int)(eq - arg), arg,
                prog);
    else if (is_long)
        fprintf(stderr, "%s: unknown flag %s (see %s --help)\n", prog, arg, prog);
    else
        fprintf(stderr, "%s: unknown flag -%c (see %s --help)\n", prog,
                optopt > 32 && optopt < 127 ? optopt : '?', prog);
    return '?';
}

#endif
