package stages

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/reugn/go-streams"
)

// Listen accepts incoming peer connections on ln and performs the handshake (BEP 3): the
// peer speaks first, and we answer only when it asks for our info hash. Its first bytes
// tell a plain handshake from an encrypted (MSE) one, which aria2 and rtorrent try first;
// the swarm's Encryption policy accepts both, or refuses one kind by closing the
// connection (under EncryptOff such peers retry in plain; see EncryptIncoming). A
// connection whose handshake completes is registered in the swarm's PeerList, which holds
// one limit, maxConns or Dial's MaxPeers if lower, on the connections of Dial and Listen
// together, and refuses a second connection to a peer (see PeerList.Connected); a refused
// one is closed at once. At most maxConns handshakes wait at once, and a new connection
// then closes the one that has waited longest: connections that never speak (a slowloris
// attack) cannot keep an honest peer out until their handshake times out.
// Out: *Conn. The outlet closes once ctx ends and every pending handshake has finished; ln
// is closed then.
func Listen(ctx context.Context, sw *Swarm, ln net.Listener, maxConns int, timeout time.Duration) streams.Source {
	out := make(chan any)
	log := sw.Log.With("stage", "listen")
	sw.Peers.LimitConns(maxConns)
	waiting := &handshaking{max: max(maxConns, 1)}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	go func() {
		defer close(out)
		defer stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			nc, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("accept failed, no more incoming peers", "err", err)
				}
				return
			}
			if old := waiting.add(nc); old != nil {
				log.Debug("incoming peer closed: handshake waited longest while others came", "peer", old.RemoteAddr())
				old.Close()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := remoteAddr(nc)
				var c *Conn
				hc, err := EncryptIncoming(ctx, sw, nc, timeout)
				if err == nil {
					c, err = Handshake(ctx, sw, hc, a, timeout, false)
				}
				waiting.remove(nc)
				if err != nil {
					log.Debug("incoming handshake failed", "peer", a, "err", err)
					sw.Emit(HandshakeFailed{Addr: a, Err: err})
					nc.Close()
					return
				}
				if err := sw.Peers.Connected(c, false); err != nil {
					if errors.Is(err, errFull) {
						log.Debug("incoming peer refused: all slots taken", "peer", a)
					} else {
						log.Debug("incoming peer refused", "peer", a, "err", err)
					}
					nc.Close()
					return
				}
				select {
				case out <- c:
				case <-ctx.Done():
					c.Close()
				}
			}()
		}
	}()
	return NewSource(out)
}

// handshaking is the set of incoming connections whose handshake is pending, oldest first.
type handshaking struct {
	mu    sync.Mutex
	max   int
	conns []net.Conn
}

// add records nc; when max connections are waiting already, it forgets the oldest one and
// returns it for the caller to close.
func (h *handshaking) add(nc net.Conn) (evicted net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) >= h.max {
		evicted = h.conns[0]
		h.conns = append(h.conns[:0], h.conns[1:]...)
	}
	h.conns = append(h.conns, nc)
	return evicted
}

// remove forgets nc, whose handshake has ended, if it is still there.
func (h *handshaking) remove(nc net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.conns {
		if c == nc {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			return
		}
	}
}

func remoteAddr(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
