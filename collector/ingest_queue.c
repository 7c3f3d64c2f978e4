/* ingest_queue.c - group commit: decoding workers, one writer, two FIFO queues under
 * one mutex (ingest_queue.h has the picture).
 *
 * Why a writer thread of its own: SQLite writes one transaction at a time whatever
 * the number of connections, and with synchronous=FULL each commit is an fsync of
 * the WAL. Storing each request in its own transaction (as the single MHD thread did)
 * made ingest one fsync per batch, whatever the number of agents pushing. The writer
 * instead takes every batch that finished decoding while the previous transaction
 * ran, so under load a transaction holds many batches and one fsync serves them all,
 * and when idle a batch is committed alone at once (no timer, no added latency).
 *
 * The workers are where the CPU goes besides SQLite: protobuf decoding, validation
 * (UTF-8 of every string) and the store's content keys (tp_store_prepare: chain JSON
 * and hashes). They run in parallel and never touch the store's connection. */
#include "ingest_queue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tp_mem.h"

#define DEFAULT_MAX_PENDING 1024
#define DEFAULT_MAX_DECODED ((size_t)256 * 1024 * 1024)
#define DEFAULT_MAX_GROUP 256
#define DEFAULT_MAX_GROUP_RESULTS 100000
#define MAX_WORKERS 16

typedef struct item {
  struct item *next;
  const uint8_t *body;
  size_t len;
  tp_ingest_params params; /* window points at `window` below */
  tp_time_window window;
  tp_ingest_done_fn done;
  void *ctx;
  tp_ingest_job *job;
  size_t decoded; /* bytes the job holds, charged to decoded_bytes */
} item;

typedef struct fifo {
  item *head, *tail;
  size_t n;
} fifo;

struct tp_ingest_queue {
  tp_store *store;
  tp_ingest_queue_options opt;
  pthread_mutex_t mu;
  pthread_cond_t work_cv;   /* workers: an item to decode or to answer, or the end */
  pthread_cond_t commit_cv; /* writer: a job to store, or stopping */
  fifo decode, commit, finish;
  unsigned pending;     /* reserved, not yet answered */
  unsigned unsubmitted; /* reserved, not yet submitted */
  unsigned decoding;    /* taken from `decode` by a worker, not yet past it */
  size_t decoded_bytes; /* of the jobs not yet answered */
  bool stopping;        /* no more reservations */
  bool writer_done;     /* the writer has stored everything and left */
  pthread_t *workers;
  unsigned n_workers;
  pthread_t writer;
  bool writer_started;
  bool stopped; /* threads joined (tp_ingest_queue_stop) */
  tp_ingest_queue_stats stats;
};

static void push(fifo *f, item *it) {
  it->next = NULL;
  if (f->tail != NULL)
    f->tail->next = it;
  else
    f->head = it;
  f->tail = it;
  f->n++;
}

static item *pop(fifo *f) {
  item *it = f->head;
  if (it == NULL)
    return NULL;
  f->head = it->next;
  if (f->head == NULL)
    f->tail = NULL;
  f->n--;
  return it;
}

/* Under mu, after every change of pending. */
static void publish_pending(tp_ingest_queue *q) {
  if (q->opt.pending_gauge != NULL)
    atomic_store_explicit(q->opt.pending_gauge, q->pending, memory_order_relaxed);
}

/* Gives a request's place back, then answers it. In that order: a caller that has its
 * answer must be able to reserve again at once (giving the place back after the answer
 * let a client's next request, or a test's, meet a full queue that was about to have
 * room). The callback runs outside the lock: done may take the caller's own locks. */
static void answer(tp_ingest_queue *q, item *it, tp_ingest_reply *reply) {
  pthread_mutex_lock(&q->mu);
  q->pending--;
  publish_pending(q);
  pthread_mutex_unlock(&q->mu);
  it->done(it->ctx, reply);
  free(it);
}

/* ---- workers ---------------------------------------------------------------------- */

/* The writer may leave once nothing can reach the commit queue any more. Under mu. */
static bool writer_may_leave(const tp_ingest_queue *q) {
  return q->stopping && q->unsubmitted == 0 && q->decode.n == 0 && q->decoding == 0;
}

static void decode_one(tp_ingest_queue *q, item *it) {
  tp_ingest_reply reply;
  tp_ingest_job *job = NULL;
  if (tp_ingest_prepare(q->store, it->body, it->len, &it->params, &job, &reply) != TP_E_OK) {
    pthread_mutex_lock(&q->mu);
    q->decoding--;
    pthread_cond_signal(&q->commit_cv); /* the writer may be waiting to leave */
    pthread_mutex_unlock(&q->mu);
    answer(q, it, &reply); /* refused (or no memory): nothing to store */
    return;
  }
  it->job = job;
  it->decoded = tp_ingest_job_bytes(job);
  pthread_mutex_lock(&q->mu);
  /* The bodies are bounded by the server (max_buffered_bytes); what they decode to
   * is bounded here. One batch alone always passes, or a large one could never go. */
  bool over = q->decoded_bytes > 0 && q->decoded_bytes + it->decoded > q->opt.max_decoded_bytes;
  if (!over) {
    q->decoded_bytes += it->decoded;
    push(&q->commit, it);
  }
  q->decoding--;
  pthread_cond_signal(&q->commit_cv);
  pthread_mutex_unlock(&q->mu);
  if (over) {
    it->job = NULL;
    tp_ingest_job_abandon(job, &reply,
                          "collector busy: decoded batches waiting at their limit,"
                          " retry later");
    answer(q, it, &reply);
  }
}

/* After the commit: the metrics, the ack, and freeing the decoded batch -- on a worker,
 * so the writer goes back to the store at once. */
static void finish_one(tp_ingest_queue *q, item *it) {
  tp_ingest_reply reply;
  memset(&reply, 0, sizeof(reply));
  (void)tp_ingest_finish(it->job, &reply); /* the answer says how it went */
  it->job = NULL;
  pthread_mutex_lock(&q->mu);
  q->decoded_bytes -= it->decoded;
  pthread_mutex_unlock(&q->mu);
  answer(q, it, &reply);
}

/* Answering comes first: it frees memory and ends a request's wait. */
static void *worker_main(void *arg) {
  tp_ingest_queue *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    while (q->finish.n == 0 && q->decode.n == 0 && !q->writer_done)
      pthread_cond_wait(&q->work_cv, &q->mu);
    item *it = pop(&q->finish);
    bool decode = false;
    if (it == NULL && (it = pop(&q->decode)) != NULL) {
      decode = true;
      q->decoding++;
    }
    pthread_mutex_unlock(&q->mu);
    if (it == NULL)
      return NULL; /* the writer is done and nothing is left to answer */
    if (decode)
      decode_one(q, it);
    else
      finish_one(q, it);
  }
}

/* ---- the writer --------------------------------------------------------------------- */

/* Takes what is ready, up to the group bounds; blocks until something is, or returns
 * 0 when nothing can come any more. */
static size_t take_group(tp_ingest_queue *q, item **group) {
  size_t n = 0, results = 0;
  pthread_mutex_lock(&q->mu);
  while (q->commit.n == 0 && !writer_may_leave(q))
    pthread_cond_wait(&q->commit_cv, &q->mu);
  while (q->commit.n > 0 && n < q->opt.max_group) {
    size_t r = tp_ingest_job_results(q->commit.head->job);
    if (n > 0 && results + r > q->opt.max_group_results)
      break;
    group[n++] = pop(&q->commit);
    results += r;
  }
  pthread_mutex_unlock(&q->mu);
  return n;
}

static void store_group(tp_ingest_queue *q, item **group, tp_store_put *puts, size_t n) {
  char err[256];
  for (size_t i = 0; i < n; i++)
    puts[i] = *tp_ingest_job_put(group[i]->job);
  /* Failure is each put's (rc, err): a failed transaction fails them all. */
  (void)tp_store_put_batches(q->store, puts, n, err, sizeof(err));
  pthread_mutex_lock(&q->mu);
  for (size_t i = 0; i < n; i++) {
    *tp_ingest_job_put(group[i]->job) = puts[i];
    push(&q->finish, group[i]);
  }
  q->stats.groups++;
  q->stats.batches += n;
  if (n > q->stats.max_group)
    q->stats.max_group = n;
  pthread_cond_broadcast(&q->work_cv);
  pthread_mutex_unlock(&q->mu);
}

static void *writer_main(void *arg) {
  tp_ingest_queue *q = arg;
  item **group = tp_xcalloc(q->opt.max_group, sizeof(*group));
  tp_store_put *puts = tp_xcalloc(q->opt.max_group, sizeof(*puts));
  size_t n;
  while ((n = take_group(q, group)) > 0)
    store_group(q, group, puts, n);
  free(group);
  free(puts);
  pthread_mutex_lock(&q->mu);
  q->writer_done = true; /* the workers answer what is left, then leave */
  pthread_cond_broadcast(&q->work_cv);
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void apply_defaults(tp_ingest_queue_options *o) {
  if (o->workers == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->workers = cpus > 0 ? (unsigned)cpus : 1;
  }
  if (o->workers > MAX_WORKERS)
    o->workers = MAX_WORKERS;
  if (o->max_pending == 0)
    o->max_pending = DEFAULT_MAX_PENDING;
  if (o->max_decoded_bytes == 0)
    o->max_decoded_bytes = DEFAULT_MAX_DECODED;
  if (o->max_group == 0)
    o->max_group = DEFAULT_MAX_GROUP;
  if (o->max_group_results == 0)
    o->max_group_results = DEFAULT_MAX_GROUP_RESULTS;
}

static void stop_threads(tp_ingest_queue *q) {
  pthread_mutex_lock(&q->mu);
  q->stopping = true;
  pthread_cond_broadcast(&q->commit_cv);
  pthread_mutex_unlock(&q->mu);
  if (q->writer_started) {
    pthread_join(q->writer, NULL);
  } else {
    pthread_mutex_lock(&q->mu);
    q->writer_done = true;
    pthread_cond_broadcast(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
  }
  for (unsigned i = 0; i < q->n_workers; i++)
    pthread_join(q->workers[i], NULL);
}

tp_err tp_ingest_queue_new(tp_store *store, const tp_ingest_queue_options *options,
                           tp_ingest_queue **out, char *err, size_t errlen) {
  tp_ingest_queue *q = tp_xcalloc(1, sizeof(*q));
  q->store = store;
  q->opt = options != NULL ? *options : (tp_ingest_queue_options){0};
  apply_defaults(&q->opt);
  *out = NULL;
  if (pthread_mutex_init(&q->mu, NULL) != 0) {
    free(q);
    snprintf(err, errlen, "cannot create the ingest queue's mutex");
    return TP_E_NOMEM;
  }
  if (pthread_cond_init(&q->work_cv, NULL) != 0 || pthread_cond_init(&q->commit_cv, NULL) != 0) {
    snprintf(err, errlen, "cannot create the ingest queue's condition variables");
    pthread_mutex_destroy(&q->mu);
    free(q);
    return TP_E_NOMEM;
  }
  q->workers = tp_xcalloc(q->opt.workers, sizeof(*q->workers));
  tp_err rc = TP_E_OK;
  if (pthread_create(&q->writer, NULL, writer_main, q) != 0)
    rc = TP_E_NOMEM;
  else
    q->writer_started = true;
  for (unsigned i = 0; rc == TP_E_OK && i < q->opt.workers; i++) {
    if (pthread_create(&q->workers[i], NULL, worker_main, q) != 0)
      rc = TP_E_NOMEM;
    else
      q->n_workers++;
  }
  if (rc != TP_E_OK) {
    snprintf(err, errlen, "cannot start the ingest threads");
    tp_ingest_queue_free(q);
    return rc;
  }
  *out = q;
  return TP_E_OK;
}

tp_err tp_ingest_queue_reserve(tp_ingest_queue *q) {
  tp_err rc = TP_E_OK;
  pthread_mutex_lock(&q->mu);
  if (q->stopping || q->pending >= q->opt.max_pending) {
    q->stats.full++;
    rc = TP_E_FULL;
  } else {
    q->pending++;
    q->unsubmitted++;
    publish_pending(q);
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

void tp_ingest_queue_submit(tp_ingest_queue *q, const uint8_t *body, size_t len,
                            const tp_ingest_params *params, tp_ingest_done_fn done, void *ctx) {
  item *it = tp_xcalloc(1, sizeof(*it));
  it->body = body;
  it->len = len;
  it->params = *params;
  if (params->window != NULL) {
    it->window = *params->window;
    it->params.window = &it->window;
  }
  it->done = done;
  it->ctx = ctx;
  pthread_mutex_lock(&q->mu);
  push(&q->decode, it);
  q->unsubmitted--;
  pthread_cond_signal(&q->work_cv);
  pthread_mutex_unlock(&q->mu);
}

void tp_ingest_queue_stats_get(tp_ingest_queue *q, tp_ingest_queue_stats *out) {
  pthread_mutex_lock(&q->mu);
  *out = q->stats;
  pthread_mutex_unlock(&q->mu);
}

void tp_ingest_queue_stop(tp_ingest_queue *q) {
  if (q != NULL && !q->stopped) {
    stop_threads(q);
    q->stopped = true;
  }
}

void tp_ingest_queue_free(tp_ingest_queue *q) {
  if (q == NULL)
    return;
  tp_ingest_queue_stop(q);
  pthread_cond_destroy(&q->work_cv);
  pthread_cond_destroy(&q->commit_cv);
  pthread_mutex_destroy(&q->mu);
  free(q->workers);
  free(q);
}
