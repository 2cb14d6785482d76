package pipeline

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

// The session's one listener: each incoming connection goes to the torrent its handshake
// names (route), through that torrent's run's own listener (chanListener).

// accept routes incoming connections by the info hash of their handshake.
func (s *Session) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.cfg.Log.Warn("session: accept failed, no more incoming peers", "err", err)
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.route(nc)
		}()
	}
}

// routeTimeout bounds the wait for an incoming peer's first 48 bytes.
const routeTimeout = 10 * time.Second

// route reads the start of nc's handshake (BEP 3: 19, "BitTorrent protocol", 8 reserved
// bytes, the info hash) and hands nc, those bytes to be read again first, to the running
// torrent with that info hash; otherwise it closes nc. An encrypted (MSE) handshake hides
// the info hash: the MSE receiver tries every torrent's as its key, and the decrypted
// connection goes to the torrent whose key the peer used.
func (s *Session) route(nc net.Conn) {
	nc.SetReadDeadline(time.Now().Add(routeTimeout))
	var head [48]byte // a plain handshake is 68 bytes, an MSE one starts with 96 of key
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		nc.Close()
		return
	}
	nc.SetReadDeadline(time.Time{})
	var hash [20]byte
	conn := replay(nc, head[:])
	if head[0] == 19 && string(head[1:20]) == "BitTorrent protocol" {
		copy(hash[:], head[28:48])
	} else {
		c, h, _, err := stages.EncryptIncomingAny(s.ctx, s.cfg.Defaults.Encryption, conn, routeTimeout, s.hashes())
		if err != nil {
			nc.Close()
			return
		}
		conn, hash = c, h
	}
	s.mu.Lock()
	t := s.torrents[hash]
	s.mu.Unlock()
	if t == nil || !t.deliver(conn) {
		nc.Close()
	}
}

// hashes are the info hashes of the session's torrents.
func (s *Session) hashes() [][20]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][20]byte, 0, len(s.torrents))
	for h := range s.torrents {
		out = append(out, h)
	}
	return out
}

// replay returns nc with head, its first bytes, read already: Read returns them first.
// A TCP connection stays one, so that uploads still write with writev (net.Buffers).
func replay(nc net.Conn, head []byte) net.Conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		return &replayTCPConn{TCPConn: tc, head: head}
	}
	return &replayConn{Conn: nc, head: head}
}

type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(b []byte) (int, error) { return replayRead(&c.head, c.Conn, b) }

type replayTCPConn struct {
	*net.TCPConn
	head []byte
}

func (c *replayTCPConn) Read(b []byte) (int, error) { return replayRead(&c.head, c.TCPConn, b) }

func replayRead(head *[]byte, r io.Reader, b []byte) (int, error) {
	if len(*head) > 0 {
		n := copy(b, *head)
		*head = (*head)[n:]
		return n, nil
	}
	return r.Read(b)
}

// deliver hands an incoming connection to the torrent's run; false when it is not running.
func (t *Torrent) deliver(c net.Conn) bool {
	t.mu.Lock()
	ln := t.ln
	running := t.state == Running
	t.mu.Unlock()
	return running && ln != nil && ln.deliver(c)
}

// chanListener is a net.Listener fed by the session's router: one per torrent run.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	quit  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), quit: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.quit:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.quit) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// deliver passes c to Accept, unless the listener closes first or nobody accepts for a
// while (the run is busy shutting down).
func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.quit:
		return false
	case <-time.After(routeTimeout):
		return false
	}
}
