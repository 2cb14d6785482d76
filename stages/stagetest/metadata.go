package stagetest

import (
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// fakeMetadataID is the extended id a fake peer receives ut_metadata messages with.
const fakeMetadataID = 3

// ServeMetadata is a Script, after ExtendedHandshake, of a peer that offers the torrent's
// metadata (BEP 9): its extended handshake gives ut_metadata an id and metadata_size, and
// it answers each request with the piece of the info dictionary, or, when corrupt, with
// each byte inverted: a copy of the right size whose SHA-1 is not the info hash. It sends
// no bitfield and serves no data. It stops when the client hangs up.
func ServeMetadata(corrupt bool) Script { return serveMetadata(corrupt, false) }

// ServeMetadataAndSeed is ServeMetadata by a seeder: right after its extended handshake it
// sends a bitfield of every piece, and it unchokes the client once interested and answers
// its requests with the right data, on the connection the metadata came over.
func ServeMetadataAndSeed(hc *HostileConn) error { return serveMetadata(false, true)(hc) }

func serveMetadata(corrupt, seed bool) Script {
	return func(hc *HostileConn) error {
		raw := hc.T.Meta.RawInfo
		if corrupt {
			raw = append([]byte(nil), raw...)
			for i := range raw {
				raw[i] = ^raw[i]
			}
		}
		hs := wire.AppendExtHandshake(nil, wire.ExtHandshake{M: map[string]uint8{wire.ExtMetadata: fakeMetadataID},
			Client: "fake-metadata", MetadataSize: len(raw)})
		if err := hc.Send(hs); err != nil {
			return err
		}
		if seed {
			if err := hc.Send(hc.fullBitfield()); err != nil {
				return err
			}
		}
		var theirs uint8 // the client's id for ut_metadata
		hc.SetReadDeadline(time.Now().Add(HostileHold))
		for {
			m, err := hc.Next()
			if err != nil {
				return err
			}
			switch {
			case seed && m.ID == wire.Interested:
				if err := hc.Send(wire.AppendState(nil, wire.Unchoke)); err != nil {
					return err
				}
				continue
			case seed && m.ID == wire.Request:
				if err := hc.answer([]wire.Message{m}, false); err != nil {
					return err
				}
				continue
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
				theirs = h.M[wire.ExtMetadata]
			case fakeMetadataID:
				req, err := wire.ParseMetadataMsg(m.Extended[1:])
				if err != nil {
					return err
				}
				reply := wire.MetadataMsg{Type: wire.MetadataReject, Piece: req.Piece}
				if data, ok := wire.MetadataPiece(raw, req.Piece); ok {
					reply = wire.MetadataMsg{Type: wire.MetadataData, Piece: req.Piece, TotalSize: len(raw), Data: data}
				}
				if err := hc.Send(wire.AppendMetadataMsg(nil, theirs, reply)); err != nil {
					return err
				}
			}
		}
	}
}
