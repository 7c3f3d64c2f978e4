/* spool_memory.c - the spool in memory: the same numbering, lease and drop
 * accounting as the SQLite spool, lost with the process. For tests and for
 * `spool: memory` (an agent that must not write to disk).
 *
 * Records are kept oldest first in a growable array with a moving head; the
 * lease is always the first n_leased records and the first drops_leased drop
 * reports, so ack is "advance the head". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_internal.h"
#include "tp_mem.h"
#include "tp_rand.h"

typedef struct mem_record {
  uint64_t seq;
  int64_t produced_unix_ns;
  uint8_t *data;
  size_t len;
} mem_record;

typedef struct mem_spool {
  tp_spool base; /* first */
  mem_record *recs;
  size_t head, count, cap; /* live records: recs[head .. head+count) */
  tp_spool_drop *drops;
  size_t n_drops, drops_cap;
  uint64_t next_seq, next_drop_id, next_batch_seq;
  /* the outstanding lease: 0 = none */
  uint64_t lease_batch;
  size_t lease_records, lease_drops;
} mem_spool;

static mem_spool *from_base(tp_spool *s) { return (mem_spool *)s; }

static void compact(mem_spool *m) {
  if (m->head == 0 || m->count == 0) {
    m->head = 0;
    return;
  }
  memmove(m->recs, m->recs + m->head, m->count * sizeof(*m->recs));
  m->head = 0;
}

static tp_err mem_append(tp_spool *s, const uint8_t *data, size_t len, int64_t produced,
                         uint64_t *seq) {
  mem_spool *m = from_base(s);
  if (m->head + m->count == m->cap) {
    compact(m);
    if (m->count == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 64;
      m->recs = tp_xrealloc(m->recs, m->cap * sizeof(*m->recs));
    }
  }
  mem_record *r = &m->recs[m->head + m->count++];
  r->seq = m->next_seq++;
  r->produced_unix_ns = produced;
  r->len = len;
  r->data = tp_xmalloc(len ? len : 1);
  memcpy(r->data, data, len);
  *seq = r->seq;
  return TP_E_OK;
}

static tp_err mem_add_drop(tp_spool *s, const tp_spool_drop *d);

static tp_err mem_discard_oldest(tp_spool *s, uint64_t after_seq, uint64_t need,
                                 int64_t before_ns, const char *reason, tp_spool_drop *run,
                                 uint64_t *freed) {
  mem_spool *m = from_base(s);
  *run = (tp_spool_drop){0};
  *freed = 0;
  size_t first = m->head;
  while (first < m->head + m->count && m->recs[first].seq <= after_seq)
    first++;
  size_t end = first;
  while (end < m->head + m->count && *freed < need && m->recs[end].produced_unix_ns < before_ns &&
         (end == first || m->recs[end].seq == m->recs[end - 1].seq + 1)) {
    *freed += m->recs[end].len;
    end++;
  }
  if (end == first)
    return TP_E_OK;
  run->count = end - first;
  run->first_seq = m->recs[first].seq;
  run->last_seq = m->recs[end - 1].seq;
  run->first_unix_ns = m->recs[first].produced_unix_ns;
  run->last_unix_ns = m->recs[end - 1].produced_unix_ns;
  for (size_t i = first; i < end; i++)
    free(m->recs[i].data);
  /* Close the gap by moving the (few, leased) records before it forward. */
  size_t before = first - m->head;
  if (before > 0)
    memmove(m->recs + m->head + run->count, m->recs + m->head, before * sizeof(*m->recs));
  m->head += run->count;
  m->count -= run->count;
  run->reason = reason;
  return mem_add_drop(s, run); /* memory cannot fail half-way: nothing to roll back */
}

static tp_err mem_forfeit(tp_spool *s, uint64_t seq, const char *reason, size_t *len) {
  mem_spool *m = from_base(s);
  for (size_t i = m->head + m->lease_records; i < m->head + m->count; i++) {
    mem_record *r = &m->recs[i];
    if (r->seq != seq)
      continue;
    tp_spool_drop d = {.count = 1,
                       .reason = reason,
                       .first_seq = seq,
                       .last_seq = seq,
                       .first_unix_ns = r->produced_unix_ns,
                       .last_unix_ns = r->produced_unix_ns};
    *len = r->len;
    free(r->data);
    memmove(r, r + 1, (m->head + m->count - i - 1) * sizeof(*r));
    m->count--;
    return mem_add_drop(s, &d);
  }
  return TP_E_NOTFOUND;
}

static bool continues(const tp_spool_drop *last, const tp_spool_drop *d) {
  if (strcmp(last->reason, d->reason) != 0)
    return false;
  if (last->first_seq == 0 && d->first_seq == 0)
    return true;
  return last->first_seq != 0 && d->first_seq == last->last_seq + 1;
}

static tp_err mem_add_drop(tp_spool *s, const tp_spool_drop *d) {
  mem_spool *m = from_base(s);
  if (m->n_drops > m->lease_drops && continues(&m->drops[m->n_drops - 1], d)) {
    tp_spool_drop *last = &m->drops[m->n_drops - 1];
    last->count += d->count;
    if (d->first_seq != 0)
      last->last_seq = d->last_seq;
    if (d->first_unix_ns < last->first_unix_ns)
      last->first_unix_ns = d->first_unix_ns;
    if (d->last_unix_ns > last->last_unix_ns)
      last->last_unix_ns = d->last_unix_ns;
    return TP_E_OK;
  }
  if (m->n_drops == m->drops_cap) {
    m->drops_cap = m->drops_cap ? m->drops_cap * 2 : 8;
    m->drops = tp_xrealloc(m->drops, m->drops_cap * sizeof(*m->drops));
  }
  m->drops[m->n_drops] = *d;
  m->drops[m->n_drops].drop_id = m->next_drop_id++;
  m->n_drops++;
  return TP_E_OK;
}

static tp_spool_lease *copy_lease(const mem_spool *m) {
  tp_spool_lease *l = tp_xcalloc(1, sizeof(*l));
  l->batch_seq = m->lease_batch;
  l->n_records = m->lease_records;
  l->records = tp_xcalloc(l->n_records ? l->n_records : 1, sizeof(*l->records));
  for (size_t i = 0; i < l->n_records; i++) {
    const mem_record *r = &m->recs[m->head + i];
    l->records[i] = (tp_spool_record){.seq = r->seq, .produced_unix_ns = r->produced_unix_ns,
                                      .len = r->len, .data = tp_xmalloc(r->len ? r->len : 1)};
    memcpy(l->records[i].data, r->data, r->len);
    l->bytes += r->len;
  }
  l->n_drops = m->lease_drops;
  l->drops = tp_xcalloc(l->n_drops ? l->n_drops : 1, sizeof(*l->drops));
  if (l->n_drops > 0) /* m->drops may still be NULL: memcpy's arguments must not be */
    memcpy(l->drops, m->drops, l->n_drops * sizeof(*l->drops));
  return l;
}

static tp_err mem_lease(tp_spool *s, size_t max_records, size_t max_bytes, tp_spool_lease **out) {
  mem_spool *m = from_base(s);
  if (m->lease_batch == 0) {
    size_t n = 0, bytes = 0;
    while (n < m->count && n < max_records &&
           (n == 0 || bytes + m->recs[m->head + n].len <= max_bytes)) {
      bytes += m->recs[m->head + n].len;
      n++;
    }
    size_t drops = m->n_drops < TP_SPOOL_MAX_LEASE_DROPS ? m->n_drops : TP_SPOOL_MAX_LEASE_DROPS;
    if (n == 0 && drops == 0)
      return TP_E_OK;
    m->lease_batch = m->next_batch_seq++;
    m->lease_records = n;
    m->lease_drops = drops;
  }
  *out = copy_lease(m);
  return TP_E_OK;
}

static tp_err mem_ack(tp_spool *s, const tp_spool_lease *lease) {
  mem_spool *m = from_base(s);
  (void)lease;
  for (size_t i = 0; i < m->lease_records; i++)
    free(m->recs[m->head + i].data);
  m->head += m->lease_records;
  m->count -= m->lease_records;
  if (m->n_drops > m->lease_drops)
    memmove(m->drops, m->drops + m->lease_drops,
            (m->n_drops - m->lease_drops) * sizeof(*m->drops));
  m->n_drops -= m->lease_drops;
  m->lease_batch = 0;
  m->lease_records = m->lease_drops = 0;
  return TP_E_OK;
}

static tp_err mem_dissolve(tp_spool *s, const tp_spool_lease *lease) {
  mem_spool *m = from_base(s);
  (void)lease;
  m->lease_batch = 0;
  m->lease_records = m->lease_drops = 0;
  return TP_E_OK;
}

static tp_err mem_replace(tp_spool *s, uint64_t seq, const uint8_t *data, size_t len,
                          size_t *old_len) {
  mem_spool *m = from_base(s);
  for (size_t i = m->head; i < m->head + m->count; i++) {
    mem_record *r = &m->recs[i];
    if (r->seq != seq)
      continue;
    *old_len = r->len;
    free(r->data);
    r->data = tp_xmalloc(len ? len : 1);
    memcpy(r->data, data, len);
    r->len = len;
    return TP_E_OK;
  }
  return TP_E_NOTFOUND;
}

static void mem_close(tp_spool *s) {
  mem_spool *m = from_base(s);
  for (size_t i = m->head; i < m->head + m->count; i++)
    free(m->recs[i].data);
  free(m->recs);
  free(m->drops);
  free(m);
}

static const tp_spool_ops mem_ops = {
    .append = mem_append,
    .discard_oldest = mem_discard_oldest,
    .forfeit = mem_forfeit,
    .add_drop = mem_add_drop,
    .lease = mem_lease,
    .ack = mem_ack,
    .dissolve = mem_dissolve,
    .replace = mem_replace,
    .close = mem_close,
};

tp_err tp_spool_open_memory(uint64_t max_bytes, tp_spool **out) {
  mem_spool *m = tp_xcalloc(1, sizeof(*m));
  tp__spool_init(&m->base, &mem_ops, max_bytes);
  if (tp_random_fill(&m->base.id, sizeof(m->base.id)) != 0) {
    free(m);
    return TP_E_IO;
  }
  m->next_seq = m->next_drop_id = m->next_batch_seq = 1;
  snprintf(m->base.description, sizeof(m->base.description), "memory");
  *out = &m->base;
  return TP_E_OK;
}
