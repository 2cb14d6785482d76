package stagetest

import (
	"net"
	"net/netip"
	"sync"
	"testing"
)

// server is what the in-process peers share: a listener on 127.0.0.1, the connections
// they serve and the goroutines serving them, all stopped by close.
type server struct {
	ln   net.Listener
	quit chan struct{} // closed by close
	once sync.Once
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newServer listens on addr (host:port; 127.0.0.1:0 for the fakes' usual address).
func newServer(tb testing.TB, addr string) *server {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &server{ln: ln, quit: make(chan struct{}), conns: make(map[net.Conn]struct{})}
}

func (s *server) addr() netip.AddrPort { return s.ln.Addr().(*net.TCPAddr).AddrPort() }

// accept serves each connection accepted with handle, on a goroutine of its own, until
// the listener closes; accepted is called first, on the accepting goroutine.
func (s *server) accept(accepted func(), handle func(net.Conn)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			accepted()
			s.go_(func() { s.serve(c, handle) })
		}
	}()
}

// go_ runs f on a goroutine that close waits for.
func (s *server) go_(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// serve runs handle on c, which close closes if it comes first, and then closes c.
func (s *server) serve(c net.Conn, handle func(net.Conn)) {
	s.mu.Lock()
	select {
	case <-s.quit:
		s.mu.Unlock()
		c.Close()
		return
	default:
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	handle(c)
}

// close stops the listener and every connection, and waits for the goroutines.
func (s *server) close() {
	s.once.Do(func() { close(s.quit) })
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
