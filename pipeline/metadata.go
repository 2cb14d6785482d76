package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
)

// ErrNoMetadata ends a magnet link's run when no peer delivered its metadata in time.
var ErrNoMetadata = errors.New("no peer sent the metadata")

// FetchMetadata returns the metainfo of the torrent a magnet link names, and nothing more
// (`bitstorm info MAGNET`): the metadata phase of NewMagnet's Run, ended as soon as the
// info dictionary is known (or taken from Config.OutDir's .bitstorm folder, where it is
// kept). It fails with ErrNoMetadata when no peer delivered for Config.NoPeersTimeout,
// and with ctx's error when ctx ends first.
func FetchMetadata(ctx context.Context, mag *magnet.Magnet, opts ...Option) (*metainfo.MetaInfo, error) {
	if m, err := loadMetadata(newPipeline(opts).cfg.OutDir, mag); err == nil {
		return m, nil
	}
	p, err := NewMagnet(mag, opts...)
	if err != nil {
		return nil, err
	}
	if p.meta != nil {
		return p.meta, nil
	}
	ln, err := p.listen()
	if err != nil {
		return nil, err
	}
	r := p.startRun(ctx, mag.InfoHash)
	gate, wait := p.metadataGraph(r.ctx, r.sw, ln)
	m, err := p.awaitMetadata(r, gate)
	r.cancel(nil) // the connections waiting at the gate close
	wait()
	return m, err
}

// loadMetadata reads the metadata an earlier run saved for mag under outDir; the error
// wraps fs.ErrNotExist when there is none.
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
