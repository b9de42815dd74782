/*
 * gate.h - a counting semaphore with a bounded wait: at most N large image decodes at once.
 *
 * Only requests whose image header says more than 4 MP go through the gate (http.c asks
 * srv_image_is_large); a large one waits up to the given time for a place, then is answered
 * 503 with Retry-After. A waiter holds its server thread, so the number of waiters is capped
 * too (http.c: holders + waiters <= threads - 1, with at least one waiting place): ordinary
 * requests never queue behind big ones and, from 3 threads on, always find a free thread.
 * Built on a mutex and a condition variable on CLOCK_MONOTONIC (no spinning).
 */
#ifndef SRV_GATE_H
#define SRV_GATE_H

#include <pthread.h>

struct srv_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int max, busy;
    int max_waiting, waiting;
};

/* Sets up a gate for at most max (>= 1) holders and max_waiting (>= 0) waiters. Returns 0, or
 * -1 (pthread failure). */
int srv_gate_init(struct srv_gate *g, int max, int max_waiting);
/* Frees a gate nobody holds or waits on. */
void srv_gate_free(struct srv_gate *g);
/* Takes a place, waiting up to wait_ms; returns 0 (then srv_gate_leave), -1 when the time ran
 * out or max_waiting others are already waiting (then at once). Thread-safe. */
int srv_gate_enter(struct srv_gate *g, int wait_ms);
void srv_gate_leave(struct srv_gate *g);

#endif
