/* test_ratelimit.c - the writing routes' token buckets (server/ratelimit.h). */
#include "server/ratelimit.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

Test(ratelimit, a_burst_then_the_rate_and_each_address_on_its_own)
{
    struct srv_ratelimit *rl = srv_ratelimit_new(2, 4);
    cr_assert_not_null(rl);
    struct sockaddr_in a = v4("10.0.0.1"), b = v4("10.0.0.2");
    uint64_t t = 1000000;
    for (int i = 0; i < 4; i++)
        cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t), 0, "burst %d", i);
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t), 1, "then a second to wait");
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&b, t), 0, "another address is not held");
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t + 400000), 1, "0.8 tokens");
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t + 600000), 0, "1.2 tokens");
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t + 600000), 1);
    /* a long pause refills to the burst, never past it */
    for (int i = 0; i < 4; i++)
        cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t + 60000000), 0);
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, t + 60000000), 1);
    srv_ratelimit_free(rl);
}

Test(ratelimit, many_addresses_share_a_bounded_table)
{
    struct srv_ratelimit *rl = srv_ratelimit_new(1, 1);
    cr_assert_not_null(rl);
    char ip[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        struct sockaddr_in a = v4(ip);
        cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&a, 1000 + (uint64_t)i), 0, "%s", ip);
    }
    /* the last address is still remembered */
    struct sockaddr_in last = v4(ip);
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&last, 6000), 1);
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_addr.s6_addr[15] = 1;
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&s6, 6000), 0);
    cr_expect_eq(srv_ratelimit_take(rl, (struct sockaddr *)&s6, 6000), 1);
    srv_ratelimit_free(rl);
}
