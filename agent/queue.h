/* queue.h - results waiting to be pushed, bounded in memory. When full, the
 * oldest result is dropped (and counted): during a long collector outage the
 * freshest data is the most useful. A durable on-disk spool will implement
 * this same interface. */
#ifndef TP_QUEUE_H
#define TP_QUEUE_H
#include <stddef.h>
#include <stdint.h>

#include "result.h"

typedef struct tp_queue tp_queue;

tp_queue *tp_queue_new(size_t capacity);
/* Frees the queue and every result still in it. */
void tp_queue_free(tp_queue *queue);
/* Takes ownership of result. Returns 1 if an older result had to be dropped. */
int tp_queue_push(tp_queue *queue, tp_result *result);
/* Moves up to `max` oldest results into out[] (ownership passes to the
 * caller); returns how many. */
size_t tp_queue_take(tp_queue *queue, tp_result **out, size_t max);
size_t tp_queue_length(const tp_queue *queue);
uint64_t tp_queue_dropped(const tp_queue *queue);

#endif
