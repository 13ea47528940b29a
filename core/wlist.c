/*
 * Wake lists: the callbacks an event runs when it fires.
 *
 * Invariant: a node is on at most one list; node->list is non-NULL exactly
 * while it is linked, and it is cleared (under the list's lock) only after
 * its callback has returned. So cp_wlist_del() that finds list == NULL knows
 * no callback is running on the node, and one that finds it set takes the
 * lock, which waits for a fire in progress to finish.
 */
#include "chaos.h"
#include "internal.h"

void cp_wlist_init(cp_wlist *l)
{
    atomic_init(&l->lock.v, 0);
    l->fired = 0;
    l->head.prev = l->head.next = &l->head;
    atomic_init((_Atomic(cp_wlist *) *)&l->head.list, NULL);
}

static inline cp_wlist *node_list(cp_wnode *n)
{
    return atomic_load_explicit((_Atomic(cp_wlist *) *)&n->list, memory_order_acquire);
}
static inline void node_set_list(cp_wnode *n, cp_wlist *l)
{
    atomic_store_explicit((_Atomic(cp_wlist *) *)&n->list, l, memory_order_release);
}

bool cp_wlist_add(cp_wlist *l, cp_wnode *n)
{
    cp_spin_lock(&l->lock);
    if (l->fired) {
        cp_spin_unlock(&l->lock);
        node_set_list(n, NULL);
        return false;
    }
    n->next = &l->head;
    n->prev = l->head.prev;
    l->head.prev->next = n;
    l->head.prev = n;
    node_set_list(n, l);
    cp_spin_unlock(&l->lock);
    return true;
}

bool cp_wlist_add_unless(cp_wlist *l, cp_wnode *n, _Atomic uint32_t *gate, uint32_t *seen)
{
    cp_spin_lock(&l->lock);
    /* Acquire: pairs with the release half of the CAS that set *gate, so
     * the refused caller sees what the setter did before (as a fire would
     * have shown it). */
    uint32_t g = atomic_load_explicit(gate, memory_order_acquire);
    *seen = g;
    if (l->fired || g) {
        cp_spin_unlock(&l->lock);
        node_set_list(n, NULL);
        return false;
    }
    n->next = &l->head;
    n->prev = l->head.prev;
    l->head.prev->next = n;
    l->head.prev = n;
    node_set_list(n, l);
    cp_spin_unlock(&l->lock);
    return true;
}

void cp_wlist_del(cp_wnode *n)
{
    cp_wlist *l = node_list(n);
    if (!l) return;
    cp_spin_lock(&l->lock);
    if (node_list(n) == l) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        node_set_list(n, NULL);
    }
    cp_spin_unlock(&l->lock);
}

void cp_wlist_fire(cp_wlist *l)
{
    cp_spin_lock(&l->lock);
    l->fired = 1;
    while (l->head.next != &l->head) {
        cp_wnode *n = l->head.next;
        n->prev->next = n->next;
        n->next->prev = n->prev;
        CP_CHAOS_POINT();
        n->fn(n);
        node_set_list(n, NULL);   /* after fn: see the invariant above */
    }
    cp_spin_unlock(&l->lock);
}
