package dhtnode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// NodeInfo is a node of the DHT: its id and UDP address (BEP 5 "compact node info").
type NodeInfo struct {
	ID   [20]byte
	Addr netip.AddrPort
}

// State is what a node keeps across runs: its id (BEP 5 node ids are chosen once) and
// the nodes of its routing table, as libtorrent keeps them.
type State struct {
	ID    [20]byte
	Nodes []NodeInfo
}

// maxStateNodes bounds the nodes a state file holds (a full table of 160 buckets of 8
// has 1280) and so what a corrupt file can make us allocate.
const maxStateNodes = 2048

// MarshalState encodes st as a bencoded dictionary: "id", the 20-byte node id; "nodes",
// the IPv4 nodes as BEP 5 compact node infos (20-byte id, 4-byte IP, 2-byte port); and
// "nodes6", the IPv6 ones (20-byte id, 16-byte IP, 2-byte port), as BEP 32 has them.
func MarshalState(st State) []byte {
	var v4, v6 []byte
	for _, n := range st.Nodes {
		ip := n.Addr.Addr().Unmap()
		if ip.Is4() {
			v4 = appendNode(v4, n.ID, ip, n.Addr.Port())
		} else if ip.Is6() {
			v6 = appendNode(v6, n.ID, ip, n.Addr.Port())
		}
	}
	var b bytes.Buffer
	b.WriteString("d")
	for _, kv := range []struct{ k, v string }{{"id", string(st.ID[:])}, {"nodes", string(v4)}, {"nodes6", string(v6)}} {
		b.WriteString(strconv.Itoa(len(kv.k)) + ":" + kv.k)
		b.WriteString(strconv.Itoa(len(kv.v)) + ":" + kv.v)
	}
	b.WriteString("e")
	return b.Bytes()
}

func appendNode(dst []byte, id [20]byte, ip netip.Addr, port uint16) []byte {
	dst = append(dst, id[:]...)
	dst = append(dst, ip.AsSlice()...)
	return binary.BigEndian.AppendUint16(dst, port)
}

// UnmarshalState decodes what MarshalState wrote. A missing "nodes" or "nodes6" is an
// empty list; a node with port 0 or an unspecified address is skipped.
func UnmarshalState(data []byte) (State, error) {
	var st State
	v, err := bencode.Decode(data)
	if err != nil {
		return st, fmt.Errorf("dht state: %w", err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return st, fmt.Errorf("dht state: a %s, want a dictionary", bencode.TypeName(v))
	}
	id, ok := d["id"].(string)
	if !ok || len(id) != 20 {
		return st, errors.New("dht state: id: want 20 bytes")
	}
	copy(st.ID[:], id)
	for _, f := range []struct {
		key  string
		size int // of one entry: id, IP and port
	}{{"nodes", 26}, {"nodes6", 38}} {
		raw, ok := d[f.key]
		if !ok {
			continue
		}
		s, ok := raw.(string)
		if !ok || len(s)%f.size != 0 {
			return st, fmt.Errorf("dht state: %s: want a string of %d-byte entries", f.key, f.size)
		}
		for off := 0; off < len(s) && len(st.Nodes) < maxStateNodes; off += f.size {
			e := s[off : off+f.size]
			ip, _ := netip.AddrFromSlice([]byte(e[20 : f.size-2]))
			a := netip.AddrPortFrom(ip.Unmap(), binary.BigEndian.Uint16([]byte(e[f.size-2:])))
			if a.Port() == 0 || a.Addr().IsUnspecified() {
				continue
			}
			var n NodeInfo
			copy(n.ID[:], e[:20])
			n.Addr = a
			st.Nodes = append(st.Nodes, n)
		}
	}
	return st, nil
}

// LoadState reads the state file at path; "" is no state. A missing file is an error
// wrapping os.ErrNotExist.
func LoadState(path string) (State, error) {
	if path == "" {
		return State{}, os.ErrNotExist
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	return UnmarshalState(data)
}

// SaveState writes st to path atomically: a temporary file in the same directory,
// synced, then renamed over path, so that a crash leaves the old state or the new one.
// The directory is created (0700) if missing.
func SaveState(path string, st State) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dht state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("dht state: %w", err)
	}
	_, err = tmp.Write(MarshalState(st))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("dht state: %w", err)
	}
	return nil
}
