package stagetest

import (
	"net/netip"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// fakePexID is the extended id a fake peer receives ut_pex messages with.
const fakePexID = 4

// PexPeer is a Script, after ExtendedHandshake, of a peer that speaks ut_pex (BEP 11).
// Its extended handshake offers ut_pex; once it has read the client's, it reports on
// offered whether the client offers ut_pex too, and, if it does and tell is not empty,
// sends it a ut_pex message adding the peers of tell. Every ut_pex message the client
// sends it goes to seen (a send that would block is dropped). It holds the connection
// until the client closes it, and sends no bitfield.
func PexPeer(tell []netip.AddrPort, offered chan<- bool, seen chan<- wire.Pex) Script {
	return func(hc *HostileConn) error {
		hs := wire.AppendExtHandshake(nil, wire.ExtHandshake{M: map[string]uint8{wire.ExtPex: fakePexID}, Client: "fake-pex"})
		if err := hc.Send(hs); err != nil {
			return err
		}
		hc.SetReadDeadline(time.Now().Add(HostileHold))
		for {
			m, err := hc.Next()
			if err != nil {
				return err
			}
			if m.KeepAlive || m.ID != wire.Extended || len(m.Extended) == 0 {
				continue
			}
			switch m.Extended[0] {
			case 0:
				h, err := wire.ParseExtHandshake(m.Extended[1:])
				if err != nil {
					return err
				}
				id := h.M[wire.ExtPex]
				select {
				case offered <- id != 0:
				default:
				}
				if id != 0 && len(tell) > 0 {
					var p wire.Pex
					for _, a := range tell {
						p.Added = append(p.Added, wire.PexPeer{Addr: a, Flags: wire.PexSeed | wire.PexReachable})
					}
					if err := hc.Send(wire.AppendPex(nil, id, p)); err != nil {
						return err
					}
				}
			case fakePexID:
				p, err := wire.ParsePex(m.Extended[1:])
				if err != nil {
					return err
				}
				select {
				case seen <- p:
				default:
				}
			}
		}
	}
}
