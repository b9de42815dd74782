/*
 * gate.c - the large-decode semaphore (see gate.h).
 */
#include "gate.h"

#include <time.h>

int srv_gate_init(struct srv_gate *g, int max, int max_waiting)
{
    g->max = max > 0 ? max : 1;
    g->busy = 0;
    g->max_waiting = max_waiting > 0 ? max_waiting : 0;
    g->waiting = 0;
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&g->cv, &a);
    pthread_condattr_destroy(&a);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        pthread_cond_destroy(&g->cv);
        return -1;
    }
    return 0;
}

void srv_gate_free(struct srv_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

int srv_gate_enter(struct srv_gate *g, int wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    if (g->busy >= g->max && g->waiting >= g->max_waiting) {
        pthread_mutex_unlock(&g->mu);
        return -1;
    }
    int rc = 0;
    g->waiting++;
    while (g->busy >= g->max && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    g->waiting--;
    int ok = g->busy < g->max; /* a place may have come free just as the time ran out */
    if (ok)
        g->busy++;
    pthread_mutex_unlock(&g->mu);
    return ok ? 0 : -1;
}

void srv_gate_leave(struct srv_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->busy--;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}
