package stages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// MetadataSink is the last stage of the metadata phase of a magnet link (BEP 9): it asks
// every connected peer that speaks ut_metadata for the info dictionary, in 16 KiB pieces,
// and hands the first copy whose SHA-1 is the info hash to found. A peer that sends a copy
// that does not hash right is banned; one that rejects a piece, or has no metadata, is
// let go. Each peer is asked on its own (the whole dictionary is a few KiB to a few MiB),
// so one slow or lying peer holds up nobody. In: *Conn, handshake done, any order.
// Connections are closed when their fetch ends or ctx does.
type MetadataSink struct {
	in   chan any
	done chan struct{}
}

var _ streams.Sink = (*MetadataSink)(nil)

// MetadataConfig bounds the metadata fetch from one peer.
type MetadataConfig struct {
	Timeout time.Duration // the whole fetch from one peer, handshake to last piece (default 30s)
}

// ErrBadMetadata marks a peer whose metadata does not hash to the info hash.
var ErrBadMetadata = errors.New("metadata does not match the info hash")

// FetchMetadata returns the sink. found is called at most once per peer that delivered a
// good copy; the caller keeps the first and ends the phase by cancelling ctx.
func FetchMetadata(ctx context.Context, sw *Swarm, cfg MetadataConfig, found func(raw []byte)) *MetadataSink {
	cfg.Timeout = cmp0(cfg.Timeout, 30*time.Second)
	s := &MetadataSink{in: make(chan any), done: make(chan struct{})}
	log := sw.Log.With("stage", "metadata")
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		for e := range s.in {
			c := e.(*Conn)
			if ctx.Err() != nil {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				raw, err := fetchMetadata(ctx, sw, c, cfg.Timeout)
				switch {
				case err == nil:
					log.Info("metadata received", "peer", c.Addr, "size", len(raw))
					found(raw)
				case errors.Is(err, ErrBadMetadata):
					sw.Bans.Add(c.Addr)
					log.Warn("banning peer", "peer", c.Addr, "reason", err)
				case ctx.Err() != nil:
				default:
					log.Debug("no metadata from peer", "peer", c.Addr, "err", err)
				}
			}()
		}
		wg.Wait()
	}()
	return s
}

// In is the sink's inlet.
func (s *MetadataSink) In() chan<- any { return s.in }

// AwaitCompletion blocks until every connection received has been let go.
func (s *MetadataSink) AwaitCompletion() { <-s.done }

// fetchMetadata runs BEP 9 on one connection: our extended handshake (BEP 10), the peer's
// with its ut_metadata id and metadata_size, then a request for every piece, checked as
// they come and hashed once all are in.
func fetchMetadata(ctx context.Context, sw *Swarm, c *Conn, timeout time.Duration) ([]byte, error) {
	if !wire.SupportsExtensions(c.Reserved) {
		return nil, errors.New("peer does not speak the extension protocol (BEP 10)")
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(time.Now().Add(timeout))
	hs := wire.AppendExtHandshake(nil, wire.ExtHandshake{M: map[string]uint8{wire.ExtMetadata: wire.LocalMetadataID},
		Port: sw.Port, Client: ClientName, YourIP: c.Addr.Addr()})
	if _, err := c.Write(hs); err != nil {
		return nil, err
	}
	// The pieces are kept as they come, not in a buffer of the size the peer claims: a
	// peer that claims 30 MiB makes us hold only what it really sends.
	var (
		size   int
		pieces [][]byte
		left   int
		peerID uint8
	)
	for {
		id, payload, err := readFrame(c.R)
		if err != nil {
			return nil, err
		}
		if wire.ID(id) != wire.Extended || len(payload) == 0 {
			continue // keep-alives, bitfield, have, choke...: nothing to do with metadata
		}
		switch payload[0] {
		case 0:
			if pieces != nil {
				continue // a later handshake may only add extensions; the size is fixed
			}
			h, err := wire.ParseExtHandshake(payload[1:])
			if err != nil {
				return nil, err
			}
			peerID = h.M[wire.ExtMetadata]
			if peerID == 0 {
				return nil, errors.New("peer does not serve metadata (no ut_metadata in its handshake)")
			}
			n, err := wire.MetadataPieces(h.MetadataSize)
			if err != nil {
				return nil, err
			}
			size, pieces, left = h.MetadataSize, make([][]byte, n), n
			var req []byte
			for i := range n {
				req = wire.AppendMetadataMsg(req, peerID, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: i})
			}
			if _, err := c.Write(req); err != nil {
				return nil, err
			}
		case wire.LocalMetadataID:
			if pieces == nil {
				continue
			}
			m, err := wire.ParseMetadataMsg(payload[1:])
			if err != nil {
				return nil, err
			}
			switch m.Type {
			case wire.MetadataReject:
				return nil, fmt.Errorf("peer rejected metadata piece %d", m.Piece)
			case wire.MetadataData:
			default:
				continue
			}
			want := min(size-m.Piece*wire.MetadataPieceSize, wire.MetadataPieceSize)
			if m.Piece < 0 || m.Piece >= len(pieces) || m.TotalSize != size || len(m.Data) != want {
				return nil, fmt.Errorf("%w: piece %d of %d bytes, total_size %d; want %d pieces of %d bytes",
					wire.ErrBadMetadataMsg, m.Piece, len(m.Data), m.TotalSize, len(pieces), size)
			}
			if pieces[m.Piece] == nil {
				pieces[m.Piece] = bytes.Clone(m.Data)
				left--
			}
			if left == 0 {
				raw := bytes.Join(pieces, nil)
				if sha1.Sum(raw) != sw.InfoHash {
					return nil, ErrBadMetadata
				}
				return raw, nil
			}
		}
	}
}

// maxFrame bounds a message read in the metadata phase: a metadata piece with its
// dictionary, or a bitfield of a torrent with as many pieces as MaxMetadataSize can hold
// hashes of (1.5 M pieces, 192 KiB); larger is no peer we want.
const maxFrame = 256 << 10

// readFrame reads one length-prefixed message (BEP 3) and returns its id and payload; a
// keep-alive comes back as id 0 with no payload, like a choke, which callers ignore.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return 0, nil, nil
	}
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: length prefix %d", wire.ErrMessageTooLong, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return buf[0], buf[1:], nil
}
