package pipeline

import "github.com/bitstorm/bitstorm/stages"

// BEP 47 beyond the bytes of the pieces: storage answers reads of padding with zeros and
// drops writes to it, so pieces that hold padding are requested, hashed and served as
// whole pieces. What is left is done here: a piece that is all padding is never asked of
// a peer, and symbolic links are made once the data is complete.

// markPadPieces marks done the pieces that are all padding: zeros everyone has.
func (p *Pipeline) markPadPieces() {
	for _, i := range p.meta.Info.PadPieces() {
		p.sched.MarkDone(i)
	}
}

// finishFiles creates the torrent's symbolic links once every piece is verified, when
// store is our own (storage.Files.Finish; a caller's Storage has no such method). It may
// run more than once: links already made are kept. A failure is logged: the data is
// complete and verified all the same.
func (p *Pipeline) finishFiles(store stages.Storage) {
	f, ok := store.(interface{ Finish() error })
	if !ok || !p.sched.IsComplete() {
		return
	}
	if err := f.Finish(); err != nil {
		p.log.Warn("creating the torrent's symbolic links", "err", err)
	}
}
