/*
 * ratelimit.h - a token bucket per client address, for the writing routes (POST and DELETE
 * /samples): each address may make `burst` writes at once and `rate` a second after that;
 * past it the request is 429 with Retry-After. Addresses share a fixed table of slots (the
 * oldest idle one is reused), so memory stays bounded whatever the clients. Thread-safe.
 */
#ifndef SRV_RATELIMIT_H
#define SRV_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

struct srv_ratelimit;

/* rate: writes a second per address (> 0); burst: how many at once (>= 1). NULL when out of
 * memory. */
struct srv_ratelimit *srv_ratelimit_new(double rate, double burst);
void srv_ratelimit_free(struct srv_ratelimit *rl);
/* Takes one write for the address at time now_us (a monotonic clock): 0 when allowed, else the
 * seconds (>= 1) until the next one would be. */
int srv_ratelimit_take(struct srv_ratelimit *rl, const struct sockaddr *addr, uint64_t now_us);

#endif
