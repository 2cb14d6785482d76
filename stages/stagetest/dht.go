package stagetest

import (
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// DHTHandshake is an honest handshake that announces the extension protocol (BEP 10)
// and a DHT node (BEP 5).
func DHTHandshake(hc *HostileConn, dialed bool) error {
	return greetWith(rightHash, func(hc *HostileConn, b []byte) error {
		b[20+5] |= wire.ExtensionBit // the reserved bytes follow "\x13BitTorrent protocol"
		b[20+7] |= wire.DHTBit
		return hc.Send(b)
	})(hc, dialed)
}

// PortExchange is a Script, after DHTHandshake, of a peer with a DHT node on UDP port
// port: it sends its port message (BEP 5) and reports the port of the client's on got
// (a send that would block is dropped). It holds the connection until the client
// closes it.
func PortExchange(port uint16, got chan<- uint16) Script {
	return func(hc *HostileConn) error {
		if err := hc.Send(wire.AppendPort(nil, port)); err != nil {
			return err
		}
		hc.SetReadDeadline(time.Now().Add(HostileHold))
		for {
			m, err := hc.Next()
			if err != nil {
				return err
			}
			if !m.KeepAlive && m.ID == wire.Port {
				select {
				case got <- m.Port:
				default:
				}
			}
		}
	}
}
