/*
 * test_conns.c - the connection list's sweeps (server/conns.c) on socket pairs: which
 * connections they shut, and which they must leave alone.
 */
#include "server/conns.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* 1 when the server end's reading side has been shut: a read returns 0 at once. */
static int read_shut(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    return poll(&p, 1, 0) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

Test(conns, idle_connections_past_the_wait_are_shut_busy_ones_never)
{
    struct srv_conns *cs = srv_conns_new();
    cr_assert_not_null(cs);
    int a[2], b[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    struct srv_conn *idle = srv_conns_add(cs, a[0], 1000);
    struct srv_conn *busy = srv_conns_add(cs, b[0], 1000);
    srv_conn_set_busy(cs, busy, 1, 1000);
    cr_expect_eq(srv_conns_count(cs), 2);
    cr_expect_eq(srv_conns_close_idle(cs, 1500, 1000), 0, "not idle long enough");
    cr_expect_eq(srv_conns_close_idle(cs, 2500, 1000), 1, "the idle one only");
    cr_expect(read_shut(a[0]));
    cr_expect(!read_shut(b[0]));
    cr_expect_eq(srv_conns_close_idle(cs, 9000, 1000), 0, "each is shut once");
    srv_conns_remove(cs, idle);
    srv_conns_remove(cs, busy);
    cr_expect_eq(srv_conns_count(cs), 0);
    srv_conns_free(cs);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

/* The sweep reads the clock, then a request ends (since > now): that connection has been
 * idle no time at all. The unsigned difference wrapped to ~forever and shut busy keep-alive
 * connections under load (2 socket errors in 600,000 requests of make soak). */
Test(conns, a_request_that_ended_after_the_clock_was_read_is_not_idle)
{
    struct srv_conns *cs = srv_conns_new();
    cr_assert_not_null(cs);
    int a[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    struct srv_conn *c = srv_conns_add(cs, a[0], 1000);
    srv_conn_set_busy(cs, c, 1, 5000);
    srv_conn_set_busy(cs, c, 0, 5000); /* idle since 5000 */
    cr_expect_eq(srv_conns_close_idle(cs, 4999, 1000), 0);
    cr_expect_eq(srv_conns_close_half_closed(cs, 4999, 500), 0);
    cr_expect(!read_shut(a[0]));
    srv_conns_remove(cs, c);
    srv_conns_free(cs);
    close(a[0]), close(a[1]);
}

Test(conns, a_half_closed_client_with_nothing_unread_is_closed_after_the_settle_time)
{
    struct srv_conns *cs = srv_conns_new();
    cr_assert_not_null(cs);
    int a[2], b[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    struct srv_conn *done = srv_conns_add(cs, a[0], 0);
    struct srv_conn *unread = srv_conns_add(cs, b[0], 0);
    shutdown(a[1], SHUT_WR);                  /* FIN, nothing left to read */
    cr_assert_eq(write(b[1], "GET", 3), 3); /* bytes still to be read, then FIN */
    shutdown(b[1], SHUT_WR);
    cr_expect_eq(srv_conns_close_half_closed(cs, 100, 500), 0, "before the settle time");
    cr_expect_eq(srv_conns_close_half_closed(cs, 1000, 500), 1, "only the one read to the end");
    /* the client of the closed one sees its end of the stream */
    char c;
    cr_expect_eq(read(a[1], &c, 1), 0);
    srv_conns_remove(cs, done);
    srv_conns_remove(cs, unread);
    srv_conns_free(cs);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}
