/* queue.c - fixed-capacity ring of owned tp_result pointers. */
#include "queue.h"

#include <stdlib.h>

#include "tp_mem.h"

struct tp_queue {
  tp_result **slots;
  size_t capacity, head, length;
  uint64_t dropped;
};

tp_queue *tp_queue_new(size_t capacity) {
  tp_queue *q = tp_xcalloc(1, sizeof(*q));
  q->capacity = capacity ? capacity : 1;
  q->slots = tp_xcalloc(q->capacity, sizeof(tp_result *));
  return q;
}

void tp_queue_free(tp_queue *q) {
  if (q == NULL)
    return;
  tp_result *r;
  while (tp_queue_take(q, &r, 1) == 1)
    tp_result_free(r);
  free(q->slots);
  free(q);
}

int tp_queue_push(tp_queue *q, tp_result *result) {
  int dropped = 0;
  if (q->length == q->capacity) {
    tp_result_free(q->slots[q->head]);
    q->head = (q->head + 1) % q->capacity;
    q->length--;
    q->dropped++;
    dropped = 1;
  }
  q->slots[(q->head + q->length) % q->capacity] = result;
  q->length++;
  return dropped;
}

size_t tp_queue_take(tp_queue *q, tp_result **out, size_t max) {
  size_t n = 0;
  while (n < max && q->length > 0) {
    out[n++] = q->slots[q->head];
    q->slots[q->head] = NULL;
    q->head = (q->head + 1) % q->capacity;
    q->length--;
  }
  return n;
}

size_t tp_queue_length(const tp_queue *q) {
  return q->length;
}

uint64_t tp_queue_dropped(const tp_queue *q) {
  return q->dropped;
}
