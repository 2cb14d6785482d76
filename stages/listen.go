package stages

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/reugn/go-streams"
)

// Listen accepts incoming peer connections on ln and performs the handshake (BEP 3): the
// peer speaks first, and we answer only when it asks for our info hash. An attempt that is
// not BitTorrent (aria2's and rtorrent's encrypted MSE handshake, say) is closed cleanly, and
// such peers retry in plain. At most maxConns accepted connections live at once; further
// ones are closed at once. Out: *Conn. The outlet closes once ctx ends and every pending
// handshake has finished; ln is closed then.
func Listen(ctx context.Context, env *Env, ln net.Listener, maxConns int, timeout time.Duration) streams.Source {
	out := make(chan any)
	log := env.Log.With("stage", "listen")
	slots := make(chan struct{}, max(maxConns, 1))
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
			select {
			case slots <- struct{}{}:
			default:
				log.Debug("incoming peer refused: all slots taken", "peer", nc.RemoteAddr())
				nc.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := remoteAddr(nc)
				c, err := Handshake(ctx, env, nc, a, timeout, false)
				if err != nil || env.Sched.Banned(a) {
					log.Debug("incoming handshake failed", "peer", a, "err", err)
					nc.Close()
					<-slots
					return
				}
				c.release = func() { <-slots }
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

func remoteAddr(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
