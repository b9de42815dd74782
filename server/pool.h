/*
 * pool.h - expensive requests run on threads of their own, the server's threads stay free.
 *
 * Expensive: an image whose header says more than 1 MP, or a JSON body over 1 MiB (http.c).
 * Run on libmicrohttpd's threads, two of them at once took both threads of a 2-core machine
 * and every ordinary request waited behind them; and a request waiting for a place held its
 * thread too. Here http.c suspends the connection (MHD_suspend_connection: it then holds no
 * thread), submits a job, and the job, run by one of the pool's threads (by default half the
 * server threads), computes the answer and resumes the connection, whose thread then only
 * sends it. Jobs wait first come, first served; at most max_waiting wait, and one that has
 * waited longer than the wait time is taken out (srv_pool_expire) and answered 503. Knows
 * nothing of HTTP. Thread-safe.
 */
#ifndef SRV_POOL_H
#define SRV_POOL_H

#include <stdint.h>

/* Embedded in the request; run is called on a pool thread. */
struct srv_job {
    void (*run)(struct srv_job *job);
    struct srv_job *next;
    uint64_t since_us;
    int expired; /* taken out of the queue by srv_pool_expire, never run */
};

struct srv_pool;

/* Starts threads (>= 1) workers with room for max_waiting (>= 0) queued jobs. Returns 0, or
 * -1 (out of memory or threads). */
int srv_pool_new(struct srv_pool **out, int threads, int max_waiting);
/* Stops the workers after the jobs running now (queued ones must have been expired first)
 * and frees the pool. Accepts NULL. */
void srv_pool_free(struct srv_pool *p);
/* Queues job; 0, or -1 when no worker is free for it and max_waiting jobs are waiting already
 * (job untouched, park not called). park(arg) is called under the pool's lock just before the
 * job is queued, so that no worker can run it (and resume a connection) before the caller
 * has parked it. */
int srv_pool_submit(struct srv_pool *p, struct srv_job *job, uint64_t now_us,
                    void (*park)(void *), void *arg);
/* Takes out every job queued longer than max_wait_us (all of them when max_wait_us is 0), with
 * expired set, linked through next (NULL when none), for the caller to answer. */
struct srv_job *srv_pool_expire(struct srv_pool *p, uint64_t now_us, uint64_t max_wait_us);
/* Workers (for messages). */
int srv_pool_threads(const struct srv_pool *p);

#endif
