package stages

import (
	"errors"
	"fmt"

	"github.com/bitstorm/bitstorm/internal/peerid"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// ClientName is how BitStorm names itself in the BEP 10 extended handshake ("v").
const ClientName = "BitStorm/0.1"

// extension is one BEP 10 extension message a session understands: its name in the "m"
// dictionary, the extended id peers send it to us with, and its handler, called from the
// session's reader. A new extension (ut_pex next) is one more row of extensions, not a
// new case in the reader loop.
type extension struct {
	name   string
	id     uint8
	handle func(s *session, payload []byte) error
	on     func(s *session) bool // whether the session offers it; nil: always
}

// extensions lists the extension messages a session speaks, by our id.
var extensions = []extension{
	{name: wire.ExtMetadata, id: wire.LocalMetadataID, handle: (*session).metadataMsg},
	{name: wire.ExtPex, id: wire.LocalPexID, handle: (*session).pexMsg,
		on: func(s *session) bool { return s.cfg.Pex != nil }},
}

// localExtensions is the "m" dictionary of our handshake for s.
func (s *session) localExtensions() map[string]uint8 {
	m := make(map[string]uint8, len(extensions))
	for _, e := range extensions {
		if e.on == nil || e.on(s) {
			m[e.name] = e.id
		}
	}
	return m
}

// extHandshake is our BEP 10 handshake for a session: our name, our port, how many
// requests we queue (reqq), so that the peer keeps no more outstanding at us than we
// serve without waiting, and the size of the metadata we serve (BEP 9).
func (s *session) extHandshake(buf []byte) []byte {
	return wire.AppendExtHandshake(buf, wire.ExtHandshake{M: s.localExtensions(), Port: s.env.Port,
		Client: ClientName, Reqq: s.cfg.MaxUploadQueue, MetadataSize: len(s.env.RawInfo),
		YourIP: s.c.Addr.Addr()})
}

// extended handles an extended message (BEP 10): the handshake, for the peer's reqq and
// the ids it gives the extensions, or a message of one of our extensions. A handshake we
// cannot read is ignored, as is a message with an id we did not give out.
func (s *session) extended(payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	if payload[0] != 0 {
		for _, e := range extensions {
			if e.id == payload[0] && (e.on == nil || e.on(s)) {
				return e.handle(s, payload[1:])
			}
		}
		return nil
	}
	h, err := wire.ParseExtHandshake(payload[1:])
	if err != nil {
		s.log.Debug("ignoring extended handshake", "err", err)
		return nil
	}
	s.log.Debug("extended handshake", "client", h.Client, "reqq", h.Reqq, "m", h.M)
	if h.Port != 0 && s.c.Incoming && s.env.Peers.ListenPort(s.c, h.Port) {
		// We are connected to the peer at the address it listens on already, and that
		// connection stays (the peer list decides as the peer does: peerlist.go).
		return errDuplicate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerExt == nil {
		s.peerExt = make(map[string]uint8, len(h.M))
	}
	// BEP 10: the dictionary is additive, and id 0 disables an extension.
	for name, id := range h.M {
		if id == 0 {
			delete(s.peerExt, name)
		} else {
			s.peerExt[name] = id
		}
	}
	if h.Reqq > 0 {
		s.reqq = h.Reqq
	}
	if h.Port != 0 {
		s.peerPort = h.Port
	}
	if h.Client != "" {
		s.meter.client = peerid.Clean(h.Client)
	}
	s.limit = min(s.limit, s.maxQueue())
	s.window = min(s.window, s.limit)
	return nil
}

// maxQueue is the most requests the session keeps outstanding: Queue, or the peer's reqq
// when it is lower. Called with s.mu held.
func (s *session) maxQueue() int {
	if s.reqq > 0 {
		return min(s.cfg.Queue, s.reqq)
	}
	return s.cfg.Queue
}

// maxExtQueued bounds the extension replies waiting for the writer: a peer that asks
// for metadata faster than it reads is refused, not buffered without end.
const maxExtQueued = 4 * wire.MetadataPieceSize

var errExtFlood = errors.New("too many metadata requests")

// metadataMsg serves the info dictionary (BEP 9 ut_metadata): a request gets the piece,
// or a reject when the peer asks for a piece beyond the metadata's end; data and rejects
// are for a metadata fetch, which a session with a piece graph never runs, and are
// ignored. A peer that keeps requesting while more than maxExtQueued bytes of replies wait
// is dropped.
func (s *session) metadataMsg(payload []byte) error {
	m, err := wire.ParseMetadataMsg(payload)
	if err != nil {
		return err
	}
	if m.Type != wire.MetadataRequest {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.peerExt[wire.ExtMetadata]
	if !ok {
		return fmt.Errorf("%w: ut_metadata request, but its handshake gave no id for our answer", wire.ErrBadMetadataMsg)
	}
	if len(s.extOut) > maxExtQueued {
		return errExtFlood
	}
	reply := wire.MetadataMsg{Type: wire.MetadataReject, Piece: m.Piece}
	if data, ok := wire.MetadataPiece(s.env.RawInfo, m.Piece); ok {
		reply = wire.MetadataMsg{Type: wire.MetadataData, Piece: m.Piece, TotalSize: len(s.env.RawInfo), Data: data}
	}
	s.extOut = wire.AppendMetadataMsg(s.extOut, id, reply)
	s.p.Kick()
	return nil
}
