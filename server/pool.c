/*
 * pool.c - the expensive-request threads (see pool.h).
 */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

struct srv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct srv_job *head, *tail;
    int waiting, max_waiting; /* queued, not yet taken by a worker */
    int busy;                 /* jobs running */
    int stop;
    int n;
    pthread_t *threads;
};

static void *worker(void *arg)
{
    struct srv_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->head)
            break; /* stopping, and nothing left */
        struct srv_job *job = p->head;
        p->head = job->next;
        if (!p->head)
            p->tail = NULL;
        p->waiting--;
        p->busy++;
        job->next = NULL;
        pthread_mutex_unlock(&p->mu);
        job->run(job); /* may free job */
        pthread_mutex_lock(&p->mu);
        p->busy--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int srv_pool_new(struct srv_pool **out, int threads, int max_waiting)
{
    *out = NULL;
    struct srv_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->max_waiting = max_waiting > 0 ? max_waiting : 0;
    p->threads = calloc((size_t)(threads > 0 ? threads : 1), sizeof *p->threads);
    if (!p->threads || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->threads);
        free(p);
        return -1;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->threads);
        free(p);
        return -1;
    }
    for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->n++;
    }
    if (p->n == 0) {
        srv_pool_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void srv_pool_free(struct srv_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int srv_pool_submit(struct srv_pool *p, struct srv_job *job, uint64_t now_us,
                    void (*park)(void *), void *arg)
{
    pthread_mutex_lock(&p->mu);
    /* a worker is free for it, or it may wait */
    if (p->busy + p->waiting >= p->n + p->max_waiting) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    park(arg);
    job->next = NULL;
    job->since_us = now_us;
    job->expired = 0;
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    p->waiting++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

struct srv_job *srv_pool_expire(struct srv_pool *p, uint64_t now_us, uint64_t max_wait_us)
{
    struct srv_job *out = NULL, **end = &out;
    pthread_mutex_lock(&p->mu);
    struct srv_job **pp = &p->head, *prev = NULL;
    while (*pp) {
        struct srv_job *job = *pp;
        if (max_wait_us && (now_us < job->since_us || now_us - job->since_us <= max_wait_us)) {
            prev = job;
            pp = &job->next;
            continue;
        }
        *pp = job->next;
        if (p->tail == job)
            p->tail = prev;
        p->waiting--;
        job->next = NULL;
        job->expired = 1;
        *end = job;
        end = &job->next;
    }
    pthread_mutex_unlock(&p->mu);
    return out;
}

int srv_pool_threads(const struct srv_pool *p) { return p->n; }
