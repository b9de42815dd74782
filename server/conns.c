/*
 * conns.c - the open connections, busy or idle (see conns.h).
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "conns.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

struct srv_conn {
    int fd;
    atomic_int busy;          /* a request between its headers and its end */
    int shut;                 /* reading side already shut down (under the lock) */
    _Atomic uint64_t since_us; /* idle since (opened, or the last request ended) */
    struct srv_conn *prev, *next;
};

struct srv_conns {
    pthread_mutex_t lock;
    struct srv_conn *head;
    int n;
};

struct srv_conns *srv_conns_new(void)
{
    struct srv_conns *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    if (pthread_mutex_init(&cs->lock, NULL) != 0) {
        free(cs);
        return NULL;
    }
    return cs;
}

void srv_conns_free(struct srv_conns *cs)
{
    if (!cs)
        return;
    for (struct srv_conn *c = cs->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

struct srv_conn *srv_conns_add(struct srv_conns *cs, int fd, uint64_t now_us)
{
    struct srv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    atomic_init(&c->since_us, now_us);
    atomic_init(&c->busy, 0);
    pthread_mutex_lock(&cs->lock);
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    cs->n++;
    pthread_mutex_unlock(&cs->lock);
    return c;
}

void srv_conns_remove(struct srv_conns *cs, struct srv_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cs->n--;
    pthread_mutex_unlock(&cs->lock);
    free(c);
}

/* Without the lock (twice a request, from every server thread): the sweep reads the two
 * fields of connections it holds the list's lock for, and a value a moment old only moves a
 * close to the next sweep. since is stored before busy is cleared. */
void srv_conn_set_busy(struct srv_conns *cs, struct srv_conn *c, int busy, uint64_t now_us)
{
    (void)cs;
    if (!c)
        return;
    if (!busy)
        atomic_store(&c->since_us, now_us);
    atomic_store(&c->busy, busy);
}

/* How long c has been idle at now_us. since may be later than now_us (a request ended after
 * the caller read the clock): that is no time at all, not an unsigned wrap to ~forever, which
 * closed busy connections under load. */
static uint64_t idle_for(const struct srv_conn *c, uint64_t now_us)
{
    uint64_t since = atomic_load(&c->since_us);
    return now_us > since ? now_us - since : 0;
}

int srv_conns_close_idle(struct srv_conns *cs, uint64_t now_us, uint64_t max_wait_us)
{
    int n = 0;
    pthread_mutex_lock(&cs->lock);
    for (struct srv_conn *c = cs->head; c; c = c->next) {
        if (c->busy || c->shut || idle_for(c, now_us) < max_wait_us)
            continue;
        shutdown(c->fd, SHUT_RD);
        c->shut = 1;
        n++;
    }
    pthread_mutex_unlock(&cs->lock);
    return n;
}

/* The peer has closed its sending side and every byte it sent has been read. */
static int peer_done(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int unread = 0;
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) &&
           ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
}

int srv_conns_close_half_closed(struct srv_conns *cs, uint64_t now_us, uint64_t settle_us)
{
    int n = 0;
    pthread_mutex_lock(&cs->lock);
    for (struct srv_conn *c = cs->head; c; c = c->next) {
        if (c->busy || c->shut || idle_for(c, now_us) < settle_us || !peer_done(c->fd))
            continue;
        shutdown(c->fd, SHUT_RDWR);
        c->shut = 1;
        n++;
    }
    pthread_mutex_unlock(&cs->lock);
    return n;
}

int srv_conns_count(struct srv_conns *cs)
{
    pthread_mutex_lock(&cs->lock);
    int n = cs->n;
    pthread_mutex_unlock(&cs->lock);
    return n;
}
