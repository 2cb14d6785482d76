package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/stages"
)

// ErrNoMetadata ends a metadata fetch that no peer answered in time.
var ErrNoMetadata = errors.New("no peer sent the metadata")

// FetchMetadata returns the metainfo of the torrent a magnet link names. The info
// dictionary comes from Config.OutDir's .bitstorm folder when an earlier run fetched it;
// otherwise from peers (BEP 9), which come from the link's trackers and x.pe peers (or
// from WithPeerSource) and the DHT (WithDHT), over the same Dial and Listen stages as a
// download. The first copy whose SHA-1 is the link's info hash wins, and is saved, so
// that a restart fetches nothing; a peer that sends another is banned. It fails with
// ErrNoMetadata when no peer delivered for Config.NoPeersTimeout, and with ctx's error
// when ctx ends first.
//
// The piece graph is then built from the result exactly as for a .torrent file: New(m).
func FetchMetadata(ctx context.Context, mag *magnet.Magnet, opts ...Option) (*metainfo.MetaInfo, error) {
	p := newPipeline(opts)
	if m, err := loadMetadata(p.cfg.OutDir, mag); err == nil {
		p.log.Info("metadata from an earlier run", "name", m.Info.Name, "path", resume.MetadataPath(p.cfg.OutDir, mag.InfoHash))
		return m, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		p.log.Warn("ignoring saved metadata", "err", err)
	}
	if len(p.sources) == 0 {
		if tiers := mag.Tiers(); len(tiers) > 0 {
			p.sources = append(p.sources, trackers(tiers, p.dht != nil))
		}
		if len(mag.Peers) > 0 {
			p.sources = append(p.sources, stages.StaticPeers(mag.Peers))
		}
	}
	if p.dht != nil { // whether the torrent is private, only its metadata tells
		p.sources = append(p.sources, &stages.DHT{Node: p.dht})
	}
	if len(p.sources) == 0 {
		return nil, errors.New("magnet: no tracker (tr) and no peer (x.pe) to ask for the metadata, and no DHT")
	}
	var ln net.Listener
	if !p.cfg.NoListen {
		l, err := net.Listen("tcp", p.cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		ln = l
		p.port = uint16(l.Addr().(*net.TCPAddr).Port)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var once sync.Once
	var raw []byte
	sw := stages.NewSwarm(mag.InfoHash, p.cfg.PeerID, p.port, p.log, func(err error) { cancel(err) })
	found := func(b []byte) {
		once.Do(func() { raw = b; cancel(nil) })
	}
	timer := time.AfterFunc(p.cfg.NoPeersTimeout, func() {
		cancel(fmt.Errorf("%w within %s", ErrNoMetadata, p.cfg.NoPeersTimeout))
	})
	defer timer.Stop()
	p.log.Info("fetching metadata", "info_hash", fmt.Sprintf("%x", mag.InfoHash), "name", mag.Name)
	p.metadataGraph(ctx, sw, ln, found)
	once.Do(func() {}) // no more found after the graph has drained
	if raw == nil {
		if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("metadata fetch interrupted: %w", context.Canceled)
	}
	m, err := metainfo.FromInfo(raw, mag.Tiers())
	if err != nil {
		return nil, fmt.Errorf("metadata from peers: %w", err)
	}
	if err := resume.SaveMetadata(p.cfg.OutDir, m.InfoHash, metainfo.Torrent(m.RawInfo, m.AnnounceList)); err != nil {
		p.log.Warn("could not keep the metadata for a restart", "err", err)
	}
	return m, nil
}

// loadMetadata reads the metadata an earlier run saved for mag under outDir; the error
// wraps os.ErrNotExist when there is none.
func loadMetadata(outDir string, mag *magnet.Magnet) (*metainfo.MetaInfo, error) {
	m, err := metainfo.Load(resume.MetadataPath(outDir, mag.InfoHash))
	if err != nil {
		return nil, err
	}
	if m.InfoHash != mag.InfoHash {
		return nil, fmt.Errorf("%s holds the metadata of another torrent (%x)", resume.MetadataPath(outDir, mag.InfoHash), m.InfoHash)
	}
	return m, nil
}
