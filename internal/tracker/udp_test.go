package tracker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// cat joins wire fragments, so that each can carry its own comment.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestUDPConnectPacket(t *testing.T) {
	want := []byte{
		0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, // protocol_id 0x41727101980
		0x00, 0x00, 0x00, 0x00, // action 0: connect
		0xde, 0xad, 0xbe, 0xef, // transaction_id
	}
	if got := connectPacket(0xdeadbeef); !bytes.Equal(got, want) {
		t.Errorf("connectPacket = % x\nwant          % x", got, want)
	}
}

func TestUDPAnnouncePacket(t *testing.T) {
	req := Request{InfoHash: binaryHash, PeerID: peerID(), Port: 6881, Uploaded: 3, Downloaded: 2, Left: 1}
	with := func(f func(*Request)) Request { r := req; f(&r); return r }
	head := func(event, key uint32, numWant int32) []byte {
		return cat(
			be64(0x0102030405060708),       // connection_id
			be32(1),                        // action 1: announce
			be32(0xcafef00d),               // transaction_id
			binaryHash[:],                  // info_hash
			[]byte("-BS0001-abcdefghijkl"), // peer_id
			be64(2),                        // downloaded
			be64(1),                        // left
			be64(3),                        // uploaded
			be32(event),                    // event
			be32(0),                        // IP address: 0, the packet's source
			be32(key),                      // key
			be32(uint32(numWant)),          // num_want
			be16(6881),                     // port
		)
	}
	long := "/" + strings.Repeat("p", 299) // 300 bytes: a 255-byte option and a 45-byte one
	tests := []struct {
		name    string
		req     Request
		urlData string
		want    []byte
	}{
		{name: "no url data", req: req, want: head(0, 0, -1)},
		{name: "started, numwant, hex key", req: with(func(r *Request) { r.Event = EventStarted; r.NumWant = 50; r.Key = "00c0ffee" }),
			want: head(2, 0xc0ffee, 50)},
		{name: "completed", req: with(func(r *Request) { r.Event = EventCompleted }), want: head(1, 0, -1)},
		{name: "stopped", req: with(func(r *Request) { r.Event = EventStopped }), want: head(3, 0, -1)},
		{name: "huge numwant", req: with(func(r *Request) { r.NumWant = 1 << 40 }), want: head(0, 0, 1<<31-1)},
		{name: "url data", req: req, urlData: "/announce?passkey=s3cr3t",
			want: cat(head(0, 0, -1),
				[]byte{0x02, 24}, []byte("/announce?passkey=s3cr3t"), // BEP 41 URLData, 24 bytes
				[]byte{0x00}, // EndOfOptions
			)},
		{name: "url data in two options", req: req, urlData: long,
			want: cat(head(0, 0, -1),
				[]byte{0x02, 255}, []byte(long[:255]), // URLData, the first 255 bytes
				[]byte{0x02, 45}, []byte(long[255:]), // URLData, the other 45
				[]byte{0x00}, // EndOfOptions
			)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := announcePacket(0x0102030405060708, 0xcafef00d, tt.req, tt.urlData)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("announcePacket =\n% x\nwant\n% x", got, tt.want)
			}
			if len(got) != cap(got) {
				t.Errorf("announcePacket: len %d, cap %d: the size was mispredicted", len(got), cap(got))
			}
		})
	}
}

func TestUDPKey(t *testing.T) {
	for key, want := range map[string]uint32{"": 0, "1": 1, "ffffffff": 0xffffffff, "DEADbeef": 0xdeadbeef} {
		if got := udpKey(key); got != want {
			t.Errorf("udpKey(%q) = %#x, want %#x", key, got, want)
		}
	}
	// Not hex, or too long: hashed, the same way every time.
	for _, key := range []string{"k y", "123456789", "xyz"} {
		if udpKey(key) != udpKey(key) || udpKey(key) == 0 {
			t.Errorf("udpKey(%q) = %#x, want a stable hash", key, udpKey(key))
		}
	}
}

func TestUDPScrapePacket(t *testing.T) {
	h1, h2 := [20]byte{1}, [20]byte{2}
	want := cat(
		be64(42),     // connection_id
		be32(2),      // action 2: scrape
		be32(7),      // transaction_id
		h1[:], h2[:], // info hashes, 20 bytes each
	)
	if got := scrapePacket(42, 7, [][20]byte{h1, h2}); !bytes.Equal(got, want) {
		t.Errorf("scrapePacket = % x\nwant % x", got, want)
	}
}

// Replies as trackers send them.
func connectReply(tid uint32, id uint64) []byte {
	return cat(be32(0) /* connect */, be32(tid), be64(id))
}

func announceReply(tid uint32, interval, leechers, seeders int32, peers ...byte) []byte {
	return cat(be32(1) /* announce */, be32(tid), be32(uint32(interval)), be32(uint32(leechers)), be32(uint32(seeders)), peers)
}

func errorReply(tid uint32, msg string) []byte {
	return cat(be32(3) /* error */, be32(tid), []byte(msg))
}

func TestParseUDPConnect(t *testing.T) {
	tests := []struct {
		name   string
		packet []byte
		want   uint64
		err    string // prefix; "" for success
	}{
		{name: "ok", packet: connectReply(9, 0x1122334455667788), want: 0x1122334455667788},
		{name: "longer than needed", packet: append(connectReply(9, 5), 0xff), want: 5},
		{name: "no connection id", packet: cat(be32(0), be32(9), be32(1)),
			err: "tracker: bad response: udp connect reply: 12 bytes, want 16"},
		{name: "short", packet: []byte{0, 0, 0}, err: "tracker: bad response: udp connect reply: 3 bytes, want at least 8"},
		{name: "empty", packet: nil, err: "tracker: bad response: udp connect reply: 0 bytes, want at least 8"},
		{name: "other transaction", packet: connectReply(10, 5),
			err: "tracker: bad response: udp connect reply: reply to another transaction: transaction id 0x0000000a, want 0x00000009"},
		{name: "wrong action", packet: announceReply(9, 1, 2, 3),
			err: "tracker: bad response: udp connect reply: action 1 (announce), want 0"},
		{name: "unknown action", packet: cat(be32(77), be32(9), be64(1)),
			err: "tracker: bad response: udp connect reply: action 77 (unknown), want 0"},
		{name: "error action", packet: errorReply(9, "go away"), err: "tracker: failure reason: go away"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUDPConnect(tt.packet, 9)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("parseUDPConnect(% x) = %#x, %v, want %#x", tt.packet, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("parseUDPConnect(% x) = %#x, %v, want error %q", tt.packet, got, err, tt.err)
			}
			var fe *FailureError
			if !errors.Is(err, ErrBadResponse) && !errors.As(err, &fe) {
				t.Errorf("parseUDPConnect(% x) = %v: neither ErrBadResponse nor a *FailureError", tt.packet, err)
			}
		})
	}
}

func TestParseUDPAnnounce(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1").As16()
	tests := []struct {
		name   string
		packet []byte
		ipv6   bool
		want   *Response
		err    string
	}{
		{name: "ipv4 peers", packet: announceReply(5, 1800, 2, 1,
			127, 0, 0, 1, 0x1a, 0xe1, // 127.0.0.1:6881
			10, 0, 0, 2, 0x1a, 0xe2, // 10.0.0.2:6882
		), want: &Response{Interval: 30 * time.Minute, Incomplete: 2, Complete: 1,
			Peers: addrs("127.0.0.1:6881", "10.0.0.2:6882")}},
		{name: "no peers", packet: announceReply(5, 120, 0, 0),
			want: &Response{Interval: 2 * time.Minute}},
		{name: "ipv6 peers", ipv6: true, packet: announceReply(5, 1800, 0, 0, append(v6[:], 0x1a, 0xe1)...),
			want: &Response{Interval: 30 * time.Minute, Peers: addrs("[2001:db8::1]:6881")}},
		{name: "unusable peers skipped", packet: announceReply(5, 1800, 0, 0,
			0, 0, 0, 0, 0x1a, 0xe1, // 0.0.0.0: this host
			1, 2, 3, 4, 0, 0, // port 0
			1, 2, 3, 4, 0, 1, // 1.2.3.4:1
		), want: &Response{Interval: 30 * time.Minute, Peers: addrs("1.2.3.4:1")}},
		{name: "intervals and counts clamped", packet: announceReply(5, -1, -5, 1<<31-1),
			want: &Response{Interval: MinAnnounceInterval, Complete: 1<<31 - 1}},
		{name: "huge interval", packet: announceReply(5, 1<<31-1, 0, 0),
			want: &Response{Interval: MaxAnnounceInterval}},
		{name: "peers not a multiple of 6", packet: announceReply(5, 1800, 0, 0, 1, 2, 3, 4, 5),
			err: "tracker: bad response: udp announce reply: peers: length 5 is not a multiple of 6"},
		{name: "ipv4 peers over ipv6", ipv6: true, packet: announceReply(5, 1800, 0, 0, 1, 2, 3, 4, 0, 1),
			err: "tracker: bad response: udp announce reply: peers6: length 6 is not a multiple of 18"},
		{name: "short", packet: announceReply(5, 1800, 0, 0)[:19],
			err: "tracker: bad response: udp announce reply: 19 bytes, want at least 20"},
		{name: "header only", packet: be32(1), err: "tracker: bad response: udp announce reply: 4 bytes, want at least 8"},
		{name: "other transaction", packet: announceReply(6, 1800, 0, 0),
			err: "tracker: bad response: udp announce reply: reply to another transaction: transaction id 0x00000006, want 0x00000005"},
		{name: "connect reply", packet: connectReply(5, 1),
			err: "tracker: bad response: udp announce reply: action 0 (connect), want 1"},
		{name: "error", packet: errorReply(5, "Requested download is not authorized for use with this tracker."),
			err: "tracker: failure reason: Requested download is not authorized for use with this tracker."},
		{name: "error not utf-8", packet: errorReply(5, "bad\xff"), err: "tracker: failure reason: bad\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUDPAnnounce(tt.packet, 5, tt.ipv6)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("parseUDPAnnounce(% x) = %+v, %v, want error %q", tt.packet, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseUDPAnnounce(% x) = %v", tt.packet, err)
			}
			if got.Interval != tt.want.Interval || got.Complete != tt.want.Complete ||
				got.Incomplete != tt.want.Incomplete || !slices.Equal(got.Peers, tt.want.Peers) {
				t.Errorf("parseUDPAnnounce(% x) = %+v, want %+v", tt.packet, got, tt.want)
			}
		})
	}
}

func TestParseUDPScrape(t *testing.T) {
	reply := cat(be32(2) /* scrape */, be32(3),
		be32(5), be32(10), be32(2), // seeders, completed, leechers of the first hash
		be32(0), be32(0), be32(0), // of the second
	)
	got, err := parseUDPScrape(reply, 3, 2)
	if want := []ScrapeResult{{Seeders: 5, Completed: 10, Leechers: 2}, {}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseUDPScrape = %+v, %v, want %+v", got, err, want)
	}
	if _, err := parseUDPScrape(reply, 3, 3); err == nil ||
		err.Error() != "tracker: bad response: udp scrape reply: 32 bytes for 3 info hashes, want 44" {
		t.Errorf("parseUDPScrape of 3 hashes from a reply for 2 = %v", err)
	}
	if _, err := parseUDPScrape(reply, 4, 2); !errors.Is(err, errOtherTransaction) {
		t.Errorf("parseUDPScrape(other transaction) = %v", err)
	}
}
