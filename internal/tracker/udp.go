package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"strings"
)

// The wire format of the UDP tracker protocol (BEP 15): every integer is big-endian, a
// request starts with connection_id, action and transaction_id, and a reply with action
// and transaction_id.

// udpMagic is the connection_id of a connect request: BEP 15's protocol_id.
const udpMagic = 0x41727101980

// The actions of BEP 15.
const (
	actionConnect  = 0
	actionAnnounce = 1
	actionScrape   = 2
	actionError    = 3
)

var actionNames = [...]string{"connect", "announce", "scrape", "error"}

func actionName(a uint32) string {
	if a < uint32(len(actionNames)) {
		return actionNames[a]
	}
	return "unknown"
}

// Sizes of BEP 15 packets, in bytes.
const (
	udpConnectSize  = 16 // connect request and reply
	udpAnnounceSize = 98 // announce request before BEP 41's options
	udpReplyHeader  = 8  // action and transaction_id
	udpAnnounceHead = 20 // announce reply before its peers
	udpScrapeEntry  = 12 // seeders, completed, leechers
	maxUDPPacket    = 65536
)

// MaxUDPScrape is the most info hashes one UDP scrape may name. BEP 15: "Up to about 74
// torrents can be scraped at once", which keeps a request in one Ethernet frame.
const MaxUDPScrape = 74

// maxURLDataOption is the most bytes one BEP 41 URLData option carries: its length is
// one byte.
const maxURLDataOption = 255

// BEP 41 option types.
const (
	optionEnd     = 0x0 // EndOfOptions: no length, ends the list
	optionNOP     = 0x1 // NOP: no length
	optionURLData = 0x2 // URLData: a length byte, then part of the request string
)

// ScrapeResult is one torrent's counts in a scrape reply (BEP 15, BEP 48).
type ScrapeResult struct {
	Seeders   int // peers with the whole torrent
	Completed int // times the tracker saw the torrent completed
	Leechers  int // peers still downloading
}

// errOtherTransaction marks a reply whose transaction_id is not the one awaited: a late
// answer to an earlier request, or a spoofed packet. The client drops it and waits on.
var errOtherTransaction = errors.New("reply to another transaction")

// connectPacket builds a connect request (BEP 15).
func connectPacket(tid uint32) []byte {
	b := make([]byte, udpConnectSize)
	binary.BigEndian.PutUint64(b[0:], udpMagic)
	binary.BigEndian.PutUint32(b[8:], actionConnect)
	binary.BigEndian.PutUint32(b[12:], tid)
	return b
}

// udpEvent maps an event to BEP 15's numbers: 0 none, 1 completed, 2 started, 3 stopped.
func udpEvent(e Event) uint32 {
	switch e {
	case EventCompleted:
		return 1
	case EventStarted:
		return 2
	case EventStopped:
		return 3
	}
	return 0
}

// udpKey turns Request.Key into BEP 15's 32-bit key: a string of up to 8 hex digits is
// read as a number, anything else is hashed, so that the same Key gives the same key.
func udpKey(key string) uint32 {
	if key == "" {
		return 0
	}
	var n uint32
	if len(key) <= 8 {
		ok := true
		for _, c := range []byte(key) {
			switch {
			case '0' <= c && c <= '9':
				n = n<<4 | uint32(c-'0')
			case 'a' <= c && c <= 'f':
				n = n<<4 | uint32(c-'a'+10)
			case 'A' <= c && c <= 'F':
				n = n<<4 | uint32(c-'A'+10)
			default:
				ok = false
			}
		}
		if ok {
			return n
		}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

// announcePacket builds an announce request (BEP 15) for a valid req, followed by the
// request string of the tracker's URL as BEP 41 URLData options when there is one.
func announcePacket(connID uint64, tid uint32, req Request, urlData string) []byte {
	size := udpAnnounceSize
	if urlData != "" {
		chunks := (len(urlData) + maxURLDataOption - 1) / maxURLDataOption
		size += len(urlData) + 2*chunks + 1
	}
	b := make([]byte, udpAnnounceSize, size)
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], actionAnnounce)
	binary.BigEndian.PutUint32(b[12:], tid)
	copy(b[16:36], req.InfoHash[:])
	copy(b[36:56], req.PeerID[:])
	binary.BigEndian.PutUint64(b[56:], uint64(req.Downloaded))
	binary.BigEndian.PutUint64(b[64:], uint64(req.Left))
	binary.BigEndian.PutUint64(b[72:], uint64(req.Uploaded))
	binary.BigEndian.PutUint32(b[80:], udpEvent(req.Event))
	binary.BigEndian.PutUint32(b[84:], 0) // ip: 0 means the packet's source address
	binary.BigEndian.PutUint32(b[88:], udpKey(req.Key))
	// BEP 15: num_want -1 asks for the tracker's default, as leaving numwant out does
	// over HTTP.
	numWant := int32(-1)
	if req.NumWant > 0 {
		numWant = int32(min(req.NumWant, math.MaxInt32))
	}
	binary.BigEndian.PutUint32(b[92:], uint32(numWant))
	binary.BigEndian.PutUint16(b[96:], req.Port)
	if urlData == "" {
		return b
	}
	// BEP 41: the path and query go in URLData options of at most 255 bytes each, which
	// the tracker concatenates; EndOfOptions ends the list.
	for rest := urlData; rest != ""; {
		n := min(len(rest), maxURLDataOption)
		b = append(b, optionURLData, byte(n))
		b = append(b, rest[:n]...)
		rest = rest[n:]
	}
	return append(b, optionEnd)
}

// scrapePacket builds a scrape request (BEP 15) for up to MaxUDPScrape info hashes.
func scrapePacket(connID uint64, tid uint32, hashes [][20]byte) []byte {
	b := make([]byte, 16, 16+20*len(hashes))
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], actionScrape)
	binary.BigEndian.PutUint32(b[12:], tid)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// udpReply checks the header of b, a reply to a request with action want and transaction
// id tid, and returns what follows the header. A reply to another transaction is an
// error wrapping errOtherTransaction; an error action (BEP 15) is a *FailureError with
// the tracker's message; anything else malformed wraps ErrBadResponse.
func udpReply(b []byte, want, tid uint32) ([]byte, error) {
	if len(b) < udpReplyHeader {
		return nil, badf("udp %s reply: %d bytes, want at least %d", actionName(want), len(b), udpReplyHeader)
	}
	action, gotTID := binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:])
	if gotTID != tid {
		return nil, fmt.Errorf("%w: udp %s reply: %w: transaction id %#08x, want %#08x",
			ErrBadResponse, actionName(want), errOtherTransaction, gotTID, tid)
	}
	if action == actionError {
		return nil, &FailureError{Reason: strings.ToValidUTF8(string(b[udpReplyHeader:]), "\uFFFD")}
	}
	if action != want {
		return nil, badf("udp %s reply: action %d (%s), want %d", actionName(want), action, actionName(action), want)
	}
	return b[udpReplyHeader:], nil
}

// parseUDPConnect reads a connect reply (BEP 15) and returns its connection_id.
func parseUDPConnect(b []byte, tid uint32) (uint64, error) {
	body, err := udpReply(b, actionConnect, tid)
	if err != nil {
		return 0, err
	}
	if len(body) < 8 {
		return 0, badf("udp connect reply: %d bytes, want %d", len(b), udpConnectSize)
	}
	return binary.BigEndian.Uint64(body), nil
}

// parseUDPAnnounce reads an announce reply (BEP 15): interval, leechers, seeders, then
// peers to the end of the packet, 6 bytes each, or 18 (an IPv6 address and a port) when
// the tracker was reached over IPv6. At most MaxPeers are kept, and only usable ones;
// the slice never grows past what the packet's length implies.
func parseUDPAnnounce(b []byte, tid uint32, ipv6 bool) (*Response, error) {
	body, err := udpReply(b, actionAnnounce, tid)
	if err != nil {
		return nil, err
	}
	if len(body) < udpAnnounceHead-udpReplyHeader {
		return nil, badf("udp announce reply: %d bytes, want at least %d", len(b), udpAnnounceHead)
	}
	r := &Response{
		Interval:   clampInterval(int64(int32(binary.BigEndian.Uint32(body[0:])))),
		Incomplete: udpCount(body[4:]),
		Complete:   udpCount(body[8:]),
	}
	peers := body[12:]
	ipLen, field := 4, "peers"
	if ipv6 {
		ipLen, field = 16, "peers6"
	}
	if r.Peers, err = compactPeers(nil, string(peers), ipLen, "udp announce reply: "+field); err != nil {
		return nil, err
	}
	return r, nil
}

// parseUDPScrape reads a scrape reply (BEP 15) for n info hashes: seeders, completed and
// leechers for each, in the order asked.
func parseUDPScrape(b []byte, tid uint32, n int) ([]ScrapeResult, error) {
	body, err := udpReply(b, actionScrape, tid)
	if err != nil {
		return nil, err
	}
	if len(body) < n*udpScrapeEntry {
		return nil, badf("udp scrape reply: %d bytes for %d info hashes, want %d",
			len(b), n, udpReplyHeader+n*udpScrapeEntry)
	}
	out := make([]ScrapeResult, n)
	for i := range out {
		e := body[i*udpScrapeEntry:]
		out[i] = ScrapeResult{Seeders: udpCount(e[0:]), Completed: udpCount(e[4:]), Leechers: udpCount(e[8:])}
	}
	return out, nil
}

// udpCount reads a signed 32-bit count; a negative one reads as 0.
func udpCount(b []byte) int { return int(max(int32(binary.BigEndian.Uint32(b)), 0)) }

// udpIPv6 reports whether ap, the address a tracker was reached at, is IPv6 and so gets
// 18-byte peers (BEP 15); an IPv4-mapped address is IPv4.
func udpIPv6(ap netip.AddrPort) bool { return ap.Addr().Unmap().Is6() }
