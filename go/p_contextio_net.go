package main

// contextio_net: TCP echo over loopback with context-aware Read and Write,
// the twin of workloads/contextio_net.c (the seed catalogue's
// orchestration_contextio_net: "Minimal TCP echo with context-aware
// Read/Write via deadlines; shows success then a timed-out read"). Where the
// C waits in cp_fd_wait(fd, ctx), Go's net.Conn waits in the netpoller: a
// ctx's deadline becomes the conn's (SetReadDeadline/SetWriteDeadline), and
// a cancel (the server's ctx) reaches a blocked Accept or Read through a
// watcher goroutine that sets a deadline in the past.
//
// A listener on 127.0.0.1:0 (an ephemeral port, real sockets); --threads
// clients, each with its own connection (net.Dialer.DialContext) and an echo
// handler goroutine on the server side. Phase 1: each client sends
// --payload byte messages and reads each echo back (count mode: --items
// round trips over all clients; time mode: until --duration), each round
// trip under a ctx with a 5 s deadline. Phase 2: one more read, under a ctx
// whose deadline is --set deadline_ms=D away, from the peer that has nothing
// to send: it must end with the deadline. Then the clients close their
// connections, the handlers see EOF, the last client cancels the server's
// ctx (which also wakes a handler still waiting in Accept), and the listener
// is closed.
//
// One op: one round trip. Latency: its RTT (write start -> echo fully read,
// 1 in LatSample).
//
// Invariants (as the C original): every echo byte for byte the message;
// count mode: exactly --items round trips; no read or write fails or times
// out in phase 1; phase 2's read returns the deadline (not data, EOF or a
// cancel), never before it, at most 1 s after it; every socket opened
// (listener, clients, accepted) closed: the count of open sockets is 0 at the
// end; every goroutine ended.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

const (
	cnOpBound        = 5 * time.Second
	cnOvershootBound = time.Second
)

// cnPast is a deadline in the past: it wakes what waits on a conn or listener.
var cnPast = time.Unix(1, 0)

type cnState struct {
	r           *Run
	ln          *net.TCPListener
	addr        string
	srv         context.Context // the server's ctx: cancelled when the last client is done
	cancelSrv   context.CancelFunc
	clients     int
	payload     int
	deadline    time.Duration
	openFds     int64
	roundTrips  uint64
	worstOver   int64
	liveClients int32 // the 32-bit atomics after the 64-bit ones (their alignment on 32-bit)
	nfail       int32
	fail        atomic.Value // string: the first failure's message
}

func (s *cnState) note(format string, a ...interface{}) {
	if atomic.AddInt32(&s.nfail, 1) == 1 {
		s.fail.Store(fmt.Sprintf(format, a...))
	}
}

// sockets, counted so that a leak shows
func (s *cnState) opened() { atomic.AddInt64(&s.openFds, 1) }

func (s *cnState) close(c io.Closer) {
	if c != nil {
		c.Close()
		atomic.AddInt64(&s.openFds, -1)
	}
}

// cnWatch makes a cancel of ctx wake whatever waits on d (a conn's Read or
// Write, a listener's Accept): a deadline in the past. stop ends the watch
// and waits for its goroutine.
func cnWatch(ctx context.Context, d interface{ SetDeadline(time.Time) error }) (stop func()) {
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
			d.SetDeadline(cnPast)
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

func cnDone(ctx context.Context) error {
	select { // a look at the ctx: lock-free, where ctx.Err() takes its mutex
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

// cnCtxErr: a conn's deadline error is its ctx's reason (the ctx's
// deadline, which is the conn's, or the cancel that set one in the past).
func cnCtxErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if e := ctx.Err(); e != nil {
			return e
		}
		return context.DeadlineExceeded
	}
	return err
}

// ---- context-aware I/O: the ctx's deadline bounds every wait ----

func cnDeadline(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline() // zero: none
	return dl
}

// cnRead reads up to len(buf) bytes (at least 1): io.EOF at EOF, the ctx's
// reason, or the conn's error.
func cnRead(ctx context.Context, c net.Conn, buf []byte) (int, error) {
	if err := cnDone(ctx); err != nil {
		return 0, err
	}
	if dl := cnDeadline(ctx); !dl.IsZero() {
		c.SetReadDeadline(dl)
	}
	n, err := c.Read(buf)
	if n > 0 {
		return n, nil
	}
	return 0, cnCtxErr(ctx, err)
}

func cnReadFull(ctx context.Context, c net.Conn, buf []byte) error {
	if err := cnDone(ctx); err != nil {
		return err
	}
	if dl := cnDeadline(ctx); !dl.IsZero() {
		c.SetReadDeadline(dl)
	}
	_, err := io.ReadFull(c, buf)
	return cnCtxErr(ctx, err)
}

func cnWriteAll(ctx context.Context, c net.Conn, buf []byte) error {
	if err := cnDone(ctx); err != nil {
		return err
	}
	if dl := cnDeadline(ctx); !dl.IsZero() {
		c.SetWriteDeadline(dl)
	}
	_, err := c.Write(buf)
	return cnCtxErr(ctx, err)
}

// cnWhy names a status as the C does: DEADLINE, CANCELED, CLOSED, else the error.
func cnWhy(err error) string {
	switch {
	case err == nil:
		return "OK"
	case err == context.DeadlineExceeded:
		return "DEADLINE"
	case err == context.Canceled:
		return "CANCELED"
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return "CLOSED"
	default:
		return err.Error()
	}
}

// ---- the server side: one echo handler per connection ----
func (s *cnState) handler(t *Thread) {
	var conn net.Conn
	buf := make([]byte, 4096)
	t.Phase("accept")
	for {
		c, err := s.ln.Accept()
		if err == nil {
			s.opened()
			conn = c
			break
		}
		if s.srv.Err() != nil {
			break // the server's cancel ended the wait
		}
		s.note("accept: %v", err)
		break
	}
	if conn != nil {
		stop := cnWatch(s.srv, conn)
		t.Phase("echo")
		for {
			n, err := cnRead(s.srv, conn, buf)
			if err == io.EOF || err == context.Canceled {
				break // the client is done
			}
			if err != nil {
				s.note("echo handler: read: %s", cnWhy(err))
				break
			}
			if err = cnWriteAll(s.srv, conn, buf[:n]); err != nil {
				if err != context.Canceled {
					s.note("echo handler: write: %s", cnWhy(err))
				}
				break
			}
		}
		stop()
		s.close(conn)
	}
	t.Phase("done")
}

// ---- a client ----
func cnFillMsg(m []byte, id int, seq uint64) {
	x := Mix(uint64(id)<<40 | seq)
	for i := range m {
		if i%8 == 0 {
			x = Mix(x + uint64(i))
		}
		m[i] = byte(x >> (8 * uint(i%8)))
	}
}

func (s *cnState) clientPhases(t *Thread, id int, share uint64, msg, echo []byte) net.Conn {
	r := s.r
	sample := r.Cfg.LatSample
	untilSample := int64(0)

	ctx, cancel := context.WithTimeout(context.Background(), cnOpBound)
	t.Phase("connect")
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	cancel()
	if err != nil {
		s.note("client %d: connect: %v", id, err)
		return nil
	}
	s.opened()

	// phase 1: echo round trips
	var seq uint64
	for seq = 0; r.More(seq, share); seq++ {
		cnFillMsg(msg, id, seq)
		ctx, cancel := context.WithTimeout(context.Background(), cnOpBound)
		t0 := Now()
		t.Phase("write")
		if err := cnWriteAll(ctx, conn, msg); err != nil {
			s.note("client %d: round trip %d: write: %s", id, seq, cnWhy(err))
			cancel()
			break
		}
		t.Phase("read echo")
		err := cnReadFull(ctx, conn, echo)
		cancel()
		if err != nil {
			s.note("client %d: round trip %d: read: %s", id, seq, cnWhy(err))
			break
		}
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				t.Hist.Record(Since(t0))
			}
		}
		if !bytes.Equal(msg, echo) {
			s.note("client %d: round trip %d: the echo differs from the message", id, seq)
			break
		}
	}
	t.Ops = seq
	atomic.AddUint64(&s.roundTrips, seq)
	if atomic.LoadInt32(&s.nfail) != 0 {
		return conn
	}

	// phase 2: a read with a deadline from a peer that has nothing to say
	t.Phase("read with deadline")
	dl := time.Now().Add(s.deadline)
	dctx, dcancel := context.WithDeadline(context.Background(), dl)
	_, err = cnRead(dctx, conn, echo)
	tr := time.Now()
	dcancel()
	switch {
	case err != context.DeadlineExceeded:
		how := ", not DEADLINE"
		if err == nil {
			how = " (data from a peer that had nothing to send)"
		}
		s.note("client %d: the read with a %.3f ms deadline returned %s%s", id,
			float64(s.deadline)/float64(time.Millisecond), cnWhy(err), how)
	case tr.Before(dl):
		s.note("client %d: the read returned DEADLINE %.3f us before the deadline", id,
			float64(dl.Sub(tr))/float64(time.Microsecond))
	default:
		over := int64(tr.Sub(dl))
		for w := atomic.LoadInt64(&s.worstOver); over > w && !atomic.CompareAndSwapInt64(&s.worstOver, w, over); w = atomic.LoadInt64(&s.worstOver) {
		}
		if over > int64(cnOvershootBound) {
			s.note("client %d: the read returned %.3f s after its deadline (bound 1 s)", id, float64(over)/1e9)
		}
	}
	return conn
}

func (s *cnState) client(id int, share uint64) func(t *Thread) {
	return func(t *Thread) {
		msg, echo := make([]byte, s.payload), make([]byte, s.payload)
		conn := s.clientPhases(t, id, share, msg, echo)
		t.Phase("close")
		if conn != nil {
			s.close(conn) // the handler sees EOF
		}
		if atomic.AddInt32(&s.liveClients, -1) == 0 {
			s.cancelSrv()
		}
		t.Phase("done")
	}
}

func contextioNetRun(r *Run) error {
	c := r.Cfg
	s := &cnState{r: r, clients: int(c.Threads), payload: int(c.Payload),
		deadline: time.Duration(c.Param("deadline_ms")) * time.Millisecond}
	if s.clients < 1 || s.payload < 0 {
		return fmt.Errorf("threads=%d payload=%d", s.clients, s.payload)
	}
	s.liveClients = int32(s.clients)
	s.srv, s.cancelSrv = context.WithCancel(context.Background())
	defer s.cancelSrv()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %v", err)
	}
	s.opened()
	s.ln, s.addr = ln, ln.Addr().String()
	stopWatch := cnWatch(s.srv, ln) // the server's cancel wakes a handler waiting in Accept

	items := uint64(c.Items)
	for i := 0; i < s.clients; i++ {
		r.Spawn("handler", s.handler)
	}
	for i := 0; i < s.clients; i++ {
		share := items / uint64(s.clients)
		if uint64(i) < items%uint64(s.clients) {
			share++
		}
		r.Spawn("client", s.client(i, share))
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	stopWatch()
	s.close(ln) // the port is released

	if n := atomic.LoadInt32(&s.nfail); n > 0 {
		more := ""
		if n > 1 {
			more = " (and more)"
		}
		r.Fail("%s%s", s.fail.Load().(string), more)
	}
	if open := atomic.LoadInt64(&s.openFds); open != 0 {
		r.Fail("%d sockets left open after the run", open)
	}
	rt := atomic.LoadUint64(&s.roundTrips)
	if c.Duration <= 0 && !r.Stopped() && s.nfail == 0 && rt != items {
		r.Fail("%d round trips, expected %d", rt, items)
	}
	r.Metric("deadline_overshoot_ns", float64(atomic.LoadInt64(&s.worstOver)))
	r.Ops = rt
	return nil
}

func init() {
	register(&Pattern{Name: "contextio_net", Params: []string{"deadline_ms"},
		Metrics: []string{"deadline_overshoot_ns"}, Run: contextioNetRun})
}
