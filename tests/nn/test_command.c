/*
 * test_command.c - the recorded training command (nn/command.c): join and split are inverses,
 * and the public form keeps flags and file names but not the machine's directories.
 */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <string.h>

Test(command, split_gives_back_the_words_join_quoted)
{
    char *argv[] = {
        "build/digits-train", "--out", "/tmp/digits ckpt 'q-1/m.model", "", "a\\b", "--lr=0.1"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    char line[512], *av[16];
    nn_command_join(line, sizeof line, argc, argv);
    cr_assert_str_eq(line, "build/digits-train --out '/tmp/digits ckpt '\\''q-1/m.model' '' "
                           "'a\\b' --lr=0.1");
    cr_assert_eq(nn_command_split(line, av, 16), argc);
    for (int i = 0; i < argc; i++)
        cr_assert_str_eq(av[i], argv[i], "word %d", i);
    cr_assert_null(av[argc]);
}

Test(command, join_cuts_a_long_line_short_and_terminates_it)
{
    char *argv[] = {"digits-train", "--name", "abcdefghij"};
    char line[16];
    nn_command_join(line, sizeof line, 3, argv);
    cr_assert_eq(strlen(line), sizeof line - 1);
    cr_assert_str_eq(line, "digits-train --");
}

/* (command, working directory, public form) */
static const struct {
    const char *cmd, *cwd, *want;
} cases[] = {
    {"build/digits-train --data data/mnist --out models/m.model", "/repo",
     "build/digits-train --data data/mnist --out models/m.model"},
    {"/repo/build/digits-train --data /repo/data/mnist --out /tmp/x/one.model", "/repo",
     "build/digits-train --data data/mnist --out one.model"},
    {"/repo/build/digits-train --data /repo/data/mnist", NULL, "digits-train --data mnist"},
    {"digits-train --data=/home/alice/mnist/ --init=/repo/build/shipped-11.model", "/repo/",
     "digits-train --data=mnist --init=build/shipped-11.model"},
    {"digits-train --out '/tmp/digits ckpt '\\''q-1/m.model' --name x", "/repo",
     "digits-train --out m.model --name x"},
    {"digits-train --data /repo --out /repository/m.model", "/repo",
     "digits-train --data . --out m.model"},
    {"digits-train --data / --out /m.model", "/", "digits-train --data / --out m.model"},
    {"digits-train --out 'a b/m.model'", "/repo", "digits-train --out 'a b/m.model'"},
    {"", "/repo", ""},
};

Test(command, public_form_has_no_absolute_paths_and_keeps_the_rest)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[512], again[512];
        cr_assert_eq(nn_command_public(out, sizeof out, cases[i].cmd, cases[i].cwd), NN_OK);
        cr_expect_str_eq(out, cases[i].want, "case %zu: %s", i, cases[i].cmd);
        cr_assert_eq(nn_command_public(again, sizeof again, out, NULL), NN_OK);
        cr_expect_str_eq(again, out, "case %zu: applying it twice changes nothing", i);
    }
}

Test(command, public_form_refuses_null_arguments)
{
    char out[8];
    cr_expect_eq(nn_command_public(NULL, 8, "x", NULL), NN_EINVAL);
    cr_expect_eq(nn_command_public(out, 0, "x", NULL), NN_EINVAL);
    cr_expect_eq(nn_command_public(out, sizeof out, NULL, NULL), NN_EINVAL);
}
