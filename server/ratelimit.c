/*
 * ratelimit.c - token buckets per client address (see ratelimit.h).
 */
#include "ratelimit.h"

#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024

struct bucket {
    unsigned char key[17]; /* family, then 4 or 16 address bytes */
    double tokens;
    uint64_t at_us; /* last refill; 0 = free slot */
};

struct srv_ratelimit {
    pthread_mutex_t lock;
    double rate, burst;
    struct bucket slots[SLOTS];
};

struct srv_ratelimit *srv_ratelimit_new(double rate, double burst)
{
    struct srv_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    pthread_mutex_init(&rl->lock, NULL);
    rl->rate = rate > 0 ? rate : 1;
    rl->burst = burst >= 1 ? burst : 1;
    return rl;
}

void srv_ratelimit_free(struct srv_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static void key_of(unsigned char key[17], const struct sockaddr *sa)
{
    memset(key, 0, 17);
    if (!sa)
        return;
    key[0] = (unsigned char)sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(key + 1, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
}

int srv_ratelimit_take(struct srv_ratelimit *rl, const struct sockaddr *addr, uint64_t now_us)
{
    unsigned char key[17];
    key_of(key, addr);
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 1099511628211u;
    if (now_us == 0)
        now_us = 1;
    pthread_mutex_lock(&rl->lock);
    /* open addressing over 8 slots; a full run reuses its least recently used slot */
    struct bucket *b = NULL, *oldest = NULL;
    for (int i = 0; i < 8 && !b; i++) {
        struct bucket *s = &rl->slots[(h + (uint64_t)i) % SLOTS];
        if (s->at_us && !memcmp(s->key, key, sizeof key))
            b = s;
        else if (!oldest || s->at_us < oldest->at_us)
            oldest = s;
    }
    if (!b) {
        b = oldest;
        memcpy(b->key, key, sizeof key);
        b->tokens = rl->burst;
        b->at_us = now_us;
    }
    double dt = now_us > b->at_us ? (double)(now_us - b->at_us) / 1e6 : 0;
    b->tokens = fmin(rl->burst, b->tokens + dt * rl->rate);
    b->at_us = now_us;
    int wait = 0;
    if (b->tokens >= 1) {
        b->tokens -= 1;
    } else {
        wait = (int)ceil((1 - b->tokens) / rl->rate);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}
