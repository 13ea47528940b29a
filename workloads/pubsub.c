/*
 * pubsub: P publishers publish messages to topics of one broker, S
 * subscribers each hold a subscription (a buffered channel, --capacity) to
 * one topic with a delivery policy:
 *   block:       the publisher waits until the subscriber has room (or is
 *                leaving); nothing is lost;
 *   drop_newest: a full subscriber loses the new message;
 *   drop_oldest: a full subscriber loses its oldest buffered message to
 *                make room (after a few tries, the new one).
 * The Pub/Sub patterns of seed 002 (PubSub) and seed 003 (Broker with
 * Subscribe / Publish / Unsubscribe); seed 000 has no key for it.
 *
 * The broker: per topic, an rwlock over the list of subscriptions. Publish
 * holds the topic's read lock while it delivers to each subscription, by its
 * policy. Unsubscribe first fires the subscription's `gone` event (a
 * publisher blocked on it gives up that delivery), then takes the write
 * lock, unlinks it, and closes its channel after: once unlinked no publisher
 * can reach it, so nothing is ever sent to a closed subscriber. Shutdown
 * (the last publisher) closes the topics and every subscription's channel;
 * subscribers drain what they hold and exit.
 *
 * Message i of publisher p goes to topic (p + i) % topics; subscriber s takes
 * topic s % topics and policy s % 3 (--set policy=3, mixed) or the one given.
 * With --set unsub_every=N the odd-numbered subscribers unsubscribe after
 * every N messages and subscribe again (churn under load); a block
 * subscriber leaves only once a delivery to it is outstanding (a publisher
 * is blocked on it), so that the leave always races a send. --work-ns: each
 * subscriber works that long per message (slow subscribers fill up).
 *
 * One op: one message published (to every subscriber of its topic).
 * Latency: the Publish call.
 *
 * Invariants, checked on every run:
 *   - per subscription: offered == delivered + dropped (newest, oldest) +
 *     cut (given up because it was leaving) + sent to a closed channel, and
 *     the sums of wl_mix(tag) agree (nothing lost or duplicated);
 *   - nothing is ever sent to a closed subscriber (unsubscribe under load);
 *   - a subscription that lived the whole run was offered every message of
 *     its topic (counted by the publishers, outside the broker); with block
 *     it received them all;
 *   - per-publisher order: each subscription sees each publisher's messages
 *     in order (gaps only where messages were dropped);
 *   - every channel closed once, and every thread joined.
 *
 * Metrics: delivered, dropped_newest, dropped_oldest, cut, lag_p99_ns
 * (publish start -> subscriber receive, sampled), goroutines_peak (seed:
 * deliveries pending at once), closed_sends.
 *
 * Variants: `seed` is seed 002's Publish, a goroutine per message and
 * subscriber (`go func(c chan<- interface{}) { c <- msg }(ch)`), with seed
 * 003's Unsubscribe (unlink and close under the write lock). The goroutines
 * are tasks run by --set goroutines=G threads; each makes a blocking send
 * (the policy is ignored, as in the seed). Publish returns before delivery,
 * so order is not kept, deliveries pile up behind a slow subscriber, and an
 * Unsubscribe closes a channel that pending goroutines still send to (Go:
 * panic: send on closed channel): those sends are counted and fail the run.
 * At shutdown the deliveries still pending are counted the same way.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_TOPICS, P_POLICY, P_UNSUB_EVERY, P_GOROUTINES, P_COUNT };
enum { POL_BLOCK, POL_DROP_NEWEST, POL_DROP_OLDEST, POL_MIXED };
enum { M_DELIVERED, M_DROPPED_NEWEST, M_DROPPED_OLDEST, M_CUT, M_LAG_P99, M_GOROUTINES_PEAK, M_CLOSED_SENDS };
static const wl_param pubsub_params[] = {
    [P_TOPICS] = { "topics", 2, "topics; subscriber s takes topic s % topics", 4 },
    [P_POLICY] = { "policy", 3, "0 block, 1 drop_newest, 2 drop_oldest, 3 mixed (subscriber s: s % 3)", 3 },
    [P_UNSUB_EVERY] = { "unsub_every", 500, "odd subscribers leave after N messages and subscribe again; 0: never", 200 },
    [P_GOROUTINES] = { "goroutines", 4, "seed variant: threads that run the per-message goroutines", 0 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(pubsub_params, P_COUNT);

#define SEED_MAX_PENDING (1u << 20)
#define SEED_MAX_SUBS 1000

struct msg { uint64_t tag, ts; };

/* A subscription. The counters a publisher writes are atomic; the
 * subscriber's own (delivered, next) are its thread's alone. */
struct sub {
    struct sub *next_all;               /* every subscription kept to the end (seed) */
    cp_chan *ch;
    cp_event *gone;                     /* fired when Unsubscribe starts */
    int policy, topic, steady;
    _Atomic uint64_t offered, offered_sum, drop_new, drop_new_sum, drop_old, drop_old_sum;
    _Atomic uint64_t cut, cut_sum, closed_sends, closed_sum, closes;
    _Atomic int close_done;             /* the closer has returned from cp_chan_close */
    uint64_t delivered, delivered_sum;
    uint64_t *next;                     /* per publisher: the lowest seq it may still deliver */
};

struct topic {
    cp_rwlock *lk;
    struct sub **subs;                  /* under lk */
    int n, cap, closed;
    _Atomic uint64_t published, published_sum;  /* counted by the publishers */
};

struct task { struct sub *sub; struct msg m; };

struct ps_state {
    wl_run *r;
    const cp_backend *b;
    int pubs, nsubs, ntopics, seed, policy;
    uint64_t unsub_every;
    size_t cap;
    struct topic *topics;
    struct sub **first;                 /* subscriber i's first subscription */
    wl_group live_pubs;
    _Atomic int pubs_done;
    /* totals of the subscriptions checked so far */
    cp_mutex *acc;
    struct sub *kept;                   /* under acc: subscriptions kept to the end */
    uint64_t nkept;
    uint64_t delivered, drop_new, drop_old, cut, closed_sends, subs_checked;
    /* seed: the goroutines' task queue */
    cp_mutex *qmu;
    cp_cond *qcv;
    struct task *q;
    size_t qhead, qlen, qcap, busy, peak;
    int qclosed;
    uint64_t pending_at_close;
    cp_hist **lag;                      /* per subscriber thread */
    wl_errors err;
};

/* ---- subscriptions ---- */
static struct sub *sub_new(struct ps_state *s, int topic, int policy)
{
    struct sub *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->topic = topic;
    u->policy = policy;
    u->ch = cp_chan_new(s->b, sizeof(struct msg), s->cap);
    u->gone = s->seed ? NULL : cp_event_new(s->b);
    u->next = calloc((size_t)s->pubs, sizeof *u->next);
    if (!u->ch || (!s->seed && !u->gone) || !u->next) {
        cp_chan_free(u->ch);
        cp_event_free(u->gone);
        free(u->next);
        free(u);
        return NULL;
    }
    return u;
}

static void sub_free(struct sub *u)
{
    cp_chan_free(u->ch);
    cp_event_free(u->gone);
    free(u->next);
    free(u);
}

/* Subscribe: link u into its topic; 0, or -1 once the broker has closed. */
static int subscribe(struct ps_state *s, struct sub *u)
{
    struct topic *t = &s->topics[u->topic];
    int rc = 0;
    cp_rwlock_wlock(t->lk);
    if (t->closed) {
        rc = -1;
    } else {
        if (t->n == t->cap) {
            int cap = t->cap ? 2 * t->cap : 8;
            struct sub **n = realloc(t->subs, (size_t)cap * sizeof *n);
            if (!n) rc = -1;
            else {
                t->subs = n;
                t->cap = cap;
            }
        }
        if (!rc) t->subs[t->n++] = u;
    }
    cp_rwlock_wunlock(t->lk);
    return rc;
}

static int unlink_sub(struct topic *t, struct sub *u)
{
    for (int i = 0; i < t->n; i++)
        if (t->subs[i] == u) {
            t->subs[i] = t->subs[--t->n];
            return 1;
        }
    return 0;
}

static void close_sub(struct ps_state *s, struct sub *u)
{
    atomic_fetch_add(&u->closes, 1);    /* before the close, which the subscriber observes */
    if (cp_chan_close(u->ch) != CP_OK) wl_note(&s->err, "a subscription's channel closed twice (topic, 0)", (uint64_t)u->topic, 0);
    /* the subscriber may free u once it has seen the close: only after this */
    atomic_store_explicit(&u->close_done, 1, memory_order_release);
}

static void unsubscribe(struct ps_state *s, struct sub *u)
{
    struct topic *t = &s->topics[u->topic];
    if (s->seed) {
        /* seed 003: unlink and close under the lock; the goroutines that
         * still hold the channel are not the broker's concern */
        cp_rwlock_wlock(t->lk);
        if (unlink_sub(t, u)) close_sub(s, u);
        cp_rwlock_wunlock(t->lk);
        return;
    }
    cp_event_fire(u->gone);             /* a publisher blocked on u gives up */
    cp_rwlock_wlock(t->lk);             /* ...and every publisher inside Publish has left u */
    int linked = unlink_sub(t, u);
    cp_rwlock_wunlock(t->lk);
    if (linked) close_sub(s, u);        /* unreachable now: no send can follow */
}

/* ---- delivery ---- */
static void deliver(struct ps_state *s, struct sub *u, const struct msg *m)
{
    uint64_t h = wl_mix(m->tag);
    atomic_fetch_add(&u->offered, 1);
    atomic_fetch_add(&u->offered_sum, h);
    cp_status st;
    switch (u->policy) {
    case POL_BLOCK: {
        cp_case cs[2] = { { .op = CP_SEND, .ch = u->ch, .elem = (void *)m }, { .op = CP_WAIT, .ev = u->gone } };
        int i = cp_select(cs, 2, NULL, &st);
        if (i == 0 && st == CP_OK) return;
        if (i == 1) {
            atomic_fetch_add(&u->cut, 1);
            atomic_fetch_add(&u->cut_sum, h);
            return;
        }
        break;                          /* closed: counted below */
    }
    case POL_DROP_NEWEST:
        st = cp_chan_try_send(u->ch, m);
        if (st == CP_OK) return;
        if (st == CP_WOULDBLOCK) {
            atomic_fetch_add(&u->drop_new, 1);
            atomic_fetch_add(&u->drop_new_sum, h);
            return;
        }
        break;
    default:                            /* drop_oldest */
        for (int tries = 0; tries < 4; tries++) {
            st = cp_chan_try_send(u->ch, m);
            if (st == CP_OK) return;
            if (st != CP_WOULDBLOCK) break;
            struct msg old;
            if (cp_chan_try_recv(u->ch, &old) == CP_OK) {
                atomic_fetch_add(&u->drop_old, 1);
                atomic_fetch_add(&u->drop_old_sum, wl_mix(old.tag));
            }
        }
        if (st == CP_WOULDBLOCK) {      /* no room made (capacity 0, or others refilled it) */
            atomic_fetch_add(&u->drop_new, 1);
            atomic_fetch_add(&u->drop_new_sum, h);
            return;
        }
        break;
    }
    atomic_fetch_add(&u->closed_sends, 1);
    atomic_fetch_add(&u->closed_sum, h);
}

/* seed: `go func() { c <- msg }()` as a task; 0, or -1 on a pile-up */
static int spawn_delivery(struct ps_state *s, struct sub *u, const struct msg *m)
{
    atomic_fetch_add(&u->offered, 1);
    atomic_fetch_add(&u->offered_sum, wl_mix(m->tag));
    cp_mutex_lock(s->qmu);
    if (s->qlen == s->qcap) {
        size_t cap = s->qcap ? 2 * s->qcap : 1024;
        struct task *n = cap <= SEED_MAX_PENDING ? malloc(cap * sizeof *n) : NULL;
        if (!n) {
            cp_mutex_unlock(s->qmu);
            atomic_fetch_add(&u->closed_sends, 1);     /* never delivered: accounted as lost */
            atomic_fetch_add(&u->closed_sum, wl_mix(m->tag));
            return -1;
        }
        for (size_t i = 0; i < s->qlen; i++) n[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = n;
        s->qhead = 0;
        s->qcap = cap;
    }
    s->q[(s->qhead + s->qlen++) % s->qcap] = (struct task){ u, *m };
    if (s->qlen + s->busy > s->peak) s->peak = s->qlen + s->busy;
    cp_cond_signal(s->qcv);
    cp_mutex_unlock(s->qmu);
    return 0;
}

static void *goroutines(wl_thread *self, void *arg)
{
    struct ps_state *s = arg;
    uint64_t n = 0;
    cp_mutex_lock(s->qmu);
    for (;;) {
        wl_phase(self, "wait for a task");
        while (!s->qlen && !s->qclosed) cp_cond_wait(s->qcv, s->qmu, NULL);
        if (!s->qlen) break;
        struct task t = s->q[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->busy++;
        cp_mutex_unlock(s->qmu);
        wl_phase(self, "c <- msg");
        if (cp_chan_send(t.sub->ch, &t.m, NULL) != CP_OK) {    /* closed: Go panics here */
            atomic_fetch_add(&t.sub->closed_sends, 1);
            atomic_fetch_add(&t.sub->closed_sum, wl_mix(t.m.tag));
        }
        n++;
        cp_mutex_lock(s->qmu);
        s->busy--;
    }
    cp_mutex_unlock(s->qmu);
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static int publish(struct ps_state *s, int topic, const struct msg *m)
{
    struct topic *t = &s->topics[topic];
    int rc = 0;
    cp_rwlock_rlock(t->lk);
    for (int i = 0; i < t->n; i++) {
        if (s->seed) rc |= spawn_delivery(s, t->subs[i], m);
        else deliver(s, t->subs[i], m);
    }
    cp_rwlock_runlock(t->lk);
    return rc;
}

/* Shutdown: no more messages; every subscription's channel is closed. */
static void broker_close(struct ps_state *s)
{
    if (s->seed) {
        cp_mutex_lock(s->qmu);
        s->pending_at_close = s->qlen + s->busy;
        cp_mutex_unlock(s->qmu);
    }
    for (int i = 0; i < s->ntopics; i++) {
        struct topic *t = &s->topics[i];
        cp_rwlock_wlock(t->lk);
        t->closed = 1;
        for (int j = 0; j < t->n; j++) close_sub(s, t->subs[j]);
        t->n = 0;
        cp_rwlock_wunlock(t->lk);
    }
    if (s->seed) {
        cp_mutex_lock(s->qmu);
        s->qclosed = 1;
        cp_cond_broadcast(s->qcv);
        cp_mutex_unlock(s->qmu);
    }
}

static void *publisher(wl_thread *self, void *arg)
{
    struct ps_state *s = arg;
    wl_run *r = s->r;
    const int id = self->rank;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, s->pubs, id);
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = 0;
    uint64_t i;
    wl_phase(self, "publish");
    for (i = 0; wl_more(r, i, n); i++) {
        int topic = (int)(((uint64_t)id + i) % (uint64_t)s->ntopics);
        struct msg m = { .tag = wl_tag((uint64_t)id, i) };
        uint64_t t0 = 0;
        if (wl_sample(sample, &until_sample)) {
            t0 = m.ts = wl_now();
        }
        int rc = publish(s, topic, &m);
        if (t0) cp_hist_record(self->hist, wl_since(t0));
        atomic_fetch_add(&s->topics[topic].published, 1);
        atomic_fetch_add(&s->topics[topic].published_sum, wl_mix(m.tag));
        if (rc) {
            wl_note(&s->err, "goroutine pile-up: more than this many deliveries pending (limit, 0)", SEED_MAX_PENDING, 0);
            i++;
            break;
        }
    }
    self->ops = i;
    wl_phase(self, "close the broker");
    if (wl_group_leave(&s->live_pubs)) {
        atomic_store(&s->pubs_done, 1);
        broker_close(s);
    }
    wl_phase(self, "done");
    return NULL;
}

/* A subscription is over (closed and drained, and in the default variant no
 * publisher can reach it): check its books and add them to the totals. */
static void sub_settle(struct ps_state *s, struct sub *u)
{
    uint64_t off = atomic_load(&u->offered), dn = atomic_load(&u->drop_new), dold = atomic_load(&u->drop_old);
    uint64_t cut = atomic_load(&u->cut), cl = atomic_load(&u->closed_sends);
    uint64_t sum = u->delivered_sum + atomic_load(&u->drop_new_sum) + atomic_load(&u->drop_old_sum) +
                   atomic_load(&u->cut_sum) + atomic_load(&u->closed_sum);
    if (off != u->delivered + dn + dold + cut + cl)
        wl_note(&s->err, "subscription books: offered != delivered + dropped + cut + closed (offered, accounted)", off,
                   u->delivered + dn + dold + cut + cl);
    else if (sum != atomic_load(&u->offered_sum))
        wl_note(&s->err, "subscription checksum: offered != delivered + dropped + cut + closed (topic, offered)",
                   (uint64_t)u->topic, off);
    if (atomic_load(&u->closes) != 1)
        wl_note(&s->err, "a subscription's channel was not closed exactly once (closes, topic)", atomic_load(&u->closes),
                   (uint64_t)u->topic);
    if (u->policy == POL_BLOCK && (dn || dold))
        wl_note(&s->err, "a block subscription lost messages (dropped, topic)", dn + dold, (uint64_t)u->topic);
    if (u->steady) {
        struct topic *t = &s->topics[u->topic];
        uint64_t pub = atomic_load(&t->published);
        if (off != pub)
            wl_note(&s->err, "a subscription of the whole run was offered fewer messages than its topic got (offered, "
                          "published)",
                       off, pub);
        else if (atomic_load(&u->offered_sum) != atomic_load(&t->published_sum))
            wl_note(&s->err, "a subscription of the whole run: checksum of offered != published (topic, published)",
                       (uint64_t)u->topic, pub);
        if (cut) wl_note(&s->err, "a subscription that never left had deliveries cut (cut, topic)", cut, (uint64_t)u->topic);
    }
    cp_mutex_lock(s->acc);
    s->delivered += u->delivered;
    s->drop_new += dn;
    s->drop_old += dold;
    s->cut += cut;
    s->closed_sends += cl;
    s->subs_checked++;
    cp_mutex_unlock(s->acc);
}

/* outstanding deliveries to u: offered, not yet received nor buffered */
static uint64_t outstanding(struct sub *u)
{
    uint64_t off = atomic_load(&u->offered), have = u->delivered + cp_chan_len(u->ch);
    return off > have ? off - have : 0;
}

static void receive(struct ps_state *s, int id, struct sub *u, const struct msg *m)
{
    uint64_t pid = wl_tag_src(m->tag), seq = wl_tag_seq(m->tag);
    if (m->ts) cp_hist_record(s->lag[id], wl_since(m->ts));
    if (pid >= (uint64_t)s->pubs) wl_note(&s->err, "message from an unknown publisher (publisher, seq)", pid, seq);
    else if (seq < u->next[pid]) wl_note(&s->err, "per-publisher order broken (seq, expected at least)", seq, u->next[pid]);
    else u->next[pid] = seq + 1;
    u->delivered++;
    u->delivered_sum += wl_mix(m->tag);
}

static void *subscriber(wl_thread *self, void *arg)
{
    struct ps_state *s = arg;
    const int id = self->rank;
    const int64_t work = s->r->cfg->k.work_ns;
    const int churn = s->unsub_every && (id & 1);
    struct sub *u = s->first[id];
    uint64_t n = 0, resubs = 0;
    struct msg m;
    while (u) {
        uint64_t got = 0;
        wl_phase(self, "recv");
        while (cp_chan_recv(u->ch, &m, NULL) == CP_OK) {
            receive(s, id, u, &m);
            n++;
            if (work) wl_work(work);
            if (!churn || ++got < s->unsub_every || (s->seed && resubs >= SEED_MAX_SUBS)) continue;
            /* leave under load: a block subscription waits until a delivery
             * to it is outstanding, so that the leave races a send */
            wl_phase(self, "wait for an outstanding delivery");
            while (u->policy == POL_BLOCK && !outstanding(u) && !atomic_load(&s->pubs_done)) wl_sleep_ns(20000);
            wl_phase(self, "unsubscribe");
            unsubscribe(s, u);
            break;
        }
        wl_phase(self, "drain");
        while (cp_chan_recv(u->ch, &m, NULL) == CP_OK) {    /* what it still holds */
            receive(s, id, u, &m);
            n++;
        }
        struct sub *next = NULL;
        if (churn && !atomic_load(&s->pubs_done)) {
            next = sub_new(s, u->topic, u->policy);
            if (next && subscribe(s, next)) {
                sub_free(next);
                next = NULL;
            }
            resubs++;
        }
        if (s->seed) {                  /* goroutines may still hold u: settle it at the end */
            cp_mutex_lock(s->acc);
            u->next_all = s->kept;
            s->kept = u;
            cp_mutex_unlock(s->acc);
        } else {
            sub_settle(s, u);
            while (!atomic_load_explicit(&u->close_done, memory_order_acquire)) wl_sleep_ns(2000);
            sub_free(u);
        }
        u = next;
    }
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static int pubsub_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct ps_state s = {
        .r = r,
        .b = c->b,
        .pubs = (int)c->k.producers,
        .nsubs = (int)c->k.consumers,
        .ntopics = (int)c->set[P_TOPICS],
        .seed = c->variant == 1,
        .policy = (int)c->set[P_POLICY],
        .unsub_every = (uint64_t)c->set[P_UNSUB_EVERY],
        .cap = (size_t)c->k.capacity,
    };
    int ngo = s.seed ? (int)c->set[P_GOROUTINES] : 0, rc = -1, spawned = 0;
    wl_group_init(&s.live_pubs, s.pubs);
    s.topics = calloc((size_t)s.ntopics, sizeof *s.topics);
    s.lag = calloc((size_t)s.nsubs, sizeof *s.lag);
    s.first = calloc((size_t)s.nsubs, sizeof *s.first);
    s.acc = cp_mutex_new(c->b);
    if (s.seed) {
        s.qmu = cp_mutex_new(c->b);
        s.qcv = cp_cond_new(c->b);
    }
    if (!s.topics || !s.lag || !s.first || !s.acc || (s.seed && (!s.qmu || !s.qcv))) goto out;
    for (int i = 0; i < s.ntopics; i++)
        if (!(s.topics[i].lk = cp_rwlock_new(c->b))) goto out;
    for (int i = 0; i < s.nsubs; i++) {
        int pol = s.policy == POL_MIXED ? i % 3 : s.policy;
        s.first[i] = sub_new(&s, i % s.ntopics, pol);
        if (!s.first[i] || !(s.lag[i] = cp_hist_new(2, 3600ull * 1000000000ull))) goto out;
        s.first[i]->steady = !(s.unsub_every && (i & 1));
        if (subscribe(&s, s.first[i])) goto out;
    }
    wl_spawn_n(r, s.nsubs, "subscriber", subscriber, &s);
    wl_spawn_n(r, ngo, "goroutine", goroutines, &s);
    wl_spawn_n(r, s.pubs, "publisher", publisher, &s);
    spawned = 1;                        /* the threads own the first subscriptions now */
    wl_start_and_join(r);
    rc = 0;

    while (s.kept) {                    /* seed: every goroutine has finished now */
        struct sub *u = s.kept;
        s.kept = u->next_all;
        sub_settle(&s, u);
        sub_free(u);
    }
    uint64_t published = 0;
    for (int i = 0; i < s.ntopics; i++) published += atomic_load(&s.topics[i].published);
    if (s.closed_sends && s.seed)
        wl_fail(r, "%llu messages sent to a closed subscriber (Go: panic: send on closed channel); %llu deliveries "
                   "were still pending at shutdown (goroutines, at most %zu at once)",
                (unsigned long long)s.closed_sends, (unsigned long long)s.pending_at_close, s.peak);
    else if (s.closed_sends)
        wl_fail(r, "%llu messages sent to a closed subscriber (Go: panic: send on closed channel)",
                (unsigned long long)s.closed_sends);
    uint64_t errors = wl_errors_fail(r, &s.err);
    if (c->duration <= 0 && published != (uint64_t)c->k.items && !errors)
        wl_fail(r, "published %llu messages, asked for %lld", (unsigned long long)published, (long long)c->k.items);

    cp_hist *lag = cp_hist_new(2, 3600ull * 1000000000ull);
    if (lag) {
        for (int i = 0; i < s.nsubs; i++) cp_hist_merge(lag, s.lag[i]);
        if (cp_hist_count(lag)) wl_metric(r, M_LAG_P99, (double)cp_hist_percentile(lag, 99));
        cp_hist_free(lag);
    }
    wl_metric(r, M_DELIVERED, (double)s.delivered);
    wl_metric(r, M_DROPPED_NEWEST, (double)s.drop_new);
    wl_metric(r, M_DROPPED_OLDEST, (double)s.drop_old);
    wl_metric(r, M_CUT, (double)s.cut);
    wl_metric(r, M_GOROUTINES_PEAK, (double)s.peak);
    wl_metric(r, M_CLOSED_SENDS, (double)s.closed_sends);
    r->ops = published;
out:
    for (int i = 0; s.first && i < s.nsubs; i++) {
        if (s.first[i] && !spawned) sub_free(s.first[i]);
        if (s.lag[i]) cp_hist_free(s.lag[i]);
    }
    for (int i = 0; s.topics && i < s.ntopics; i++) {
        cp_rwlock_free(s.topics[i].lk);
        free(s.topics[i].subs);
    }
    free(s.topics);
    free(s.lag);
    free(s.q);
    cp_cond_free(s.qcv);
    cp_mutex_free(s.qmu);
    cp_mutex_free(s.acc);
    free(s.first);
    return rc;
}

static const char *pubsub_check(const wl_cfg *c)
{
    if (c->set[P_TOPICS] < 1 || c->set[P_TOPICS] > 1024) return "--set topics must be 1..1024";
    if (c->set[P_POLICY] > 3) return "--set policy must be 0 (block), 1 (drop_newest), 2 (drop_oldest) or 3 (mixed)";
    if (c->variant == 1 && c->set[P_GOROUTINES] < 1) return "--set goroutines must be >= 1";
    return NULL;
}

WL_DEFINE(pubsub) = {
    .name = "pubsub",
    .group = "resilience",
    .desc = "P publishers -> broker (topics, per-subscriber block/drop_newest/drop_oldest) -> S subscribers",
    .op = "message published",
    .latency = "the Publish call",
    .defaults = { .threads = WL_UNUSED, .producers = 2, .consumers = 4, .capacity = 16, .payload = WL_UNUSED,
                  .work_ns = 200, .items = 100000 },
    .params = pubsub_params,
    .run = pubsub_run,
    .check = pubsub_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "delivered", "count", "messages received by subscribers" },
        { "dropped_newest", "count", "new messages dropped (drop_newest, or drop_oldest that found no room)" },
        { "dropped_oldest", "count", "buffered messages evicted for a new one (drop_oldest)" },
        { "cut", "count", "deliveries given up because the subscriber was leaving" },
        { "lag_p99_ns", "ns", "publish start -> subscriber receive, p99 (sampled)" },
        { "goroutines_peak", "count", "seed: deliveries pending at once" },
        { "closed_sends", "count", "sends to a closed subscriber (0 unless seed)" },
        { NULL, NULL, NULL },
    },
};
