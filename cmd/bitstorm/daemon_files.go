package main

import (
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
)

// File selection: transmission's wanted flag and priority per file become one
// pipeline.FilePriority: not wanted is FileSkip, high is FileHigh, low (-1 in the RPC
// spec's priorities) is FileLow, normal is FileNormal.

func filePriority(wanted bool, p transmission.Priority) pipeline.FilePriority {
	switch {
	case !wanted:
		return pipeline.FileSkip
	case p == transmission.PriorityHigh:
		return pipeline.FileHigh
	case p == transmission.PriorityLow:
		return pipeline.FileLow
	}
	return pipeline.FileNormal
}

// fileSelectionOptions chooses a torrent's files as the state or torrent-add says; none
// when nothing was chosen (every file normal, or what the pipeline kept).
func fileSelectionOptions(wanted []bool, prios []transmission.Priority) []pipeline.Option {
	if wanted == nil && prios == nil {
		return nil
	}
	return []pipeline.Option{pipeline.WithFilePriorities(func(i int, _ metainfo.File) pipeline.FilePriority {
		w, p := true, transmission.PriorityNormal
		if i < len(wanted) {
			w = wanted[i]
		}
		if i < len(prios) {
			p = prios[i]
		}
		return filePriority(w, p)
	})}
}

// applyFileSelection sets the priority of each file of t whose choice changed.
func applyFileSelection(t *pipeline.Torrent, wanted []bool, prios []transmission.Priority) error {
	cur, err := t.FilePriorities()
	if err != nil {
		return err
	}
	for i := range cur {
		if fp := filePriority(wanted[i], prios[i]); fp != cur[i] {
			if err := t.SetFilePriority(i, fp); err != nil {
				return err
			}
		}
	}
	return nil
}
