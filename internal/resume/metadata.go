package resume

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
)

// A magnet link's metadata, once fetched from peers (BEP 9), is kept beside the resume
// record as a .torrent, so that the same command run again does not fetch it again.

// MetadataPath returns where the .torrent of the torrent with infoHash downloading into
// outDir is kept: <outDir>/.bitstorm/<hex info hash>.torrent.
func MetadataPath(outDir string, infoHash [20]byte) string {
	return filepath.Join(outDir, ".bitstorm", hex.EncodeToString(infoHash[:])+".torrent")
}

// SaveMetadata writes torrent (a .torrent file's bytes) to MetadataPath atomically.
func SaveMetadata(outDir string, infoHash [20]byte, torrent []byte) error {
	if err := saveFile(MetadataPath(outDir, infoHash), torrent); err != nil {
		return fmt.Errorf("resume: save metadata: %w", err)
	}
	return nil
}
