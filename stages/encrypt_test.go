package stages

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/mse"
)

// testSwarm is a swarm of the info hash {7} with peer id {id} and policy enc.
func testSwarm(id byte, enc Encryption) *Swarm {
	sw := NewSwarm([20]byte{7}, [20]byte{id}, 0, slog.New(slog.DiscardHandler), nil)
	sw.Encryption = enc
	return sw
}

// tcpPair returns both ends of a TCP connection on 127.0.0.1.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// checkStream sends size seeded random bytes from one Conn to the other, the writer's
// way (net.Buffers, as uploads write), and checks that they arrive intact.
func checkStream(t *testing.T, from, to *Conn, size int) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		var bufs net.Buffers
		for b := data; len(b) > 0; {
			n := min(len(b), 13+r.IntN(20000))
			bufs, b = append(bufs, b[:n]), b[n:]
		}
		_, err := bufs.WriteTo(from.Conn)
		errc <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(to.R, got); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing the stream: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the stream arrived changed")
	}
}

// TestEncryptPolicies runs both handshakes on a TCP pair for each pair of policies, the
// MSE handshake first when the dialer's policy is not off (Dial's first try), and checks
// the crypto method each side ends up with, or which side refuses, and then that a stream
// crosses intact both ways.
func TestEncryptPolicies(t *testing.T) {
	for _, tc := range []struct {
		name           string
		dialer, lister Encryption
		want           string // cryptoOf on both sides; "" is plain BitTorrent
		refused        error  // what the listener says, or nil
	}{
		{"prefer to prefer: MSE header, plain stream", EncryptPrefer, EncryptPrefer, "plaintext", nil},
		{"require to prefer: RC4", EncryptRequire, EncryptPrefer, "rc4", nil},
		{"prefer to require: RC4", EncryptPrefer, EncryptRequire, "rc4", nil},
		{"require to require: RC4", EncryptRequire, EncryptRequire, "rc4", nil},
		{"plain to MSE-capable", EncryptOff, EncryptPrefer, "", nil},
		{"plain to plain", EncryptOff, EncryptOff, "", nil},
		{"require refuses plain", EncryptOff, EncryptRequire, "", ErrEncryptionRequired},
		{"off refuses MSE", EncryptPrefer, EncryptOff, "", ErrEncryptionOff},
		{"off refuses MSE with RC4", EncryptRequire, EncryptOff, "", ErrEncryptionOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			a, b := testSwarm(1, tc.dialer), testSwarm(2, tc.lister)
			client, server := tcpPair(t)
			type result struct {
				c   *Conn
				err error
			}
			accepted := make(chan result, 1)
			go func() {
				hc, err := EncryptIncoming(ctx, b, server, 5*time.Second)
				var c *Conn
				if err == nil {
					c, err = Handshake(ctx, b, hc, remoteAddr(server), 5*time.Second, false)
				}
				if err != nil {
					server.Close() // as Listen does
				}
				accepted <- result{c, err}
			}()
			hc, err := net.Conn(client), error(nil)
			if tc.dialer != EncryptOff {
				hc, err = EncryptOutgoing(ctx, a, client, 5*time.Second)
			}
			var dialed *Conn
			if err == nil {
				dialed, err = Handshake(ctx, a, hc, remoteAddr(client), 5*time.Second, true)
			}
			in := <-accepted
			if tc.refused != nil {
				if !errors.Is(in.err, tc.refused) {
					t.Fatalf("listener: err = %v, want %v", in.err, tc.refused)
				}
				if err == nil {
					t.Fatal("dialer: handshake done, want it failed")
				}
				if overMSE := tc.dialer != EncryptOff; overMSE != errors.Is(err, errMSE) {
					t.Errorf("dialer: err = %v; wraps errMSE %v, want %v", err, !overMSE, overMSE)
				}
				return
			}
			if err != nil || in.err != nil {
				t.Fatalf("dialer err = %v, listener err = %v; want both nil", err, in.err)
			}
			if got := cryptoOf(dialed); got != tc.want {
				t.Errorf("dialer's crypto = %q, want %q", got, tc.want)
			}
			if got := cryptoOf(in.c); got != tc.want {
				t.Errorf("listener's crypto = %q, want %q", got, tc.want)
			}
			if dialed.PeerID != b.PeerID || in.c.PeerID != a.PeerID {
				t.Errorf("peer ids %v and %v, want %v and %v", dialed.PeerID, in.c.PeerID, b.PeerID, a.PeerID)
			}
			checkStream(t, dialed, in.c, 1<<20+7)
			checkStream(t, in.c, dialed, 300<<10)
		})
	}
}

// TestEncryptRequireRefusesPlaintextOffer: under require, an MSE initiator that offers the
// plaintext method only is refused, and so is a receiver that picks plaintext.
func TestEncryptRequireRefusesPlaintextOffer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b := testSwarm(2, EncryptRequire)
	client, server := tcpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := EncryptIncoming(ctx, b, server, 5*time.Second)
		server.Close()
		errc <- err
	}()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	_, _, err := mse.InitiateHandshake(client, b.InfoHash[:], nil, mse.CryptoMethodPlaintext)
	if err == nil {
		t.Error("initiator offering plaintext only: handshake done, want refused")
	}
	if err := <-errc; !errors.Is(err, errMSE) {
		t.Errorf("receiver: err = %v, want an MSE failure", err)
	}

	// The other way: we require RC4, a receiver that selects plaintext is refused.
	client, server = tcpPair(t)
	go func() {
		server.SetDeadline(time.Now().Add(5 * time.Second))
		skeys := func(f func([]byte) bool) { f(b.InfoHash[:]) }
		mse.ReceiveHandshake(ctx, server, skeys, func(mse.CryptoMethod) mse.CryptoMethod { return mse.CryptoMethodPlaintext })
		server.Close()
	}()
	if _, err := EncryptOutgoing(ctx, testSwarm(1, EncryptRequire), client, 5*time.Second); !errors.Is(err, errMSE) {
		t.Errorf("initiator requiring RC4 to a plaintext receiver: err = %v, want an MSE failure", err)
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// stagePair runs Listen on 127.0.0.1 for a swarm with policy lister, and Dial for one with
// policy dialer; dial sends the listener's address to Dial again and waits for the
// outcome: both Conns (closed by the caller), or the dial's failure.
type stagePair struct {
	t        *testing.T
	a, b     *Swarm
	ln       *countingListener
	addr     netip.AddrPort
	dialOut  <-chan any
	dialIn   chan<- any
	incoming <-chan any
}

func newStagePair(t *testing.T, dialer, lister Encryption) *stagePair {
	t.Helper()
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stagePair{t: t, a: testSwarm(1, dialer), b: testSwarm(2, lister), ln: &countingListener{Listener: l},
		addr: l.Addr().(*net.TCPAddr).AddrPort()}
	src := Listen(ctx, p.b, p.ln, 10, 5*time.Second)
	d := Dial(ctx, p.a, DialConfig{FirstHandshakeTimeout: 5 * time.Second, Peers: PeerListConfig{FailBackoff: time.Hour, ReconnectDelay: time.Millisecond}})
	p.dialOut, p.dialIn, p.incoming = d.Out(), d.In(), src.Out()
	t.Cleanup(func() {
		cancel()
		close(p.dialIn)
		for range p.dialOut {
		}
		for range p.incoming {
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			t.Errorf("%d goroutines left running, %d before", n, base)
		}
	})
	return p
}

// dial has Dial connect to the listener; it returns both sides' Conns, or nil ones once
// the peer list counts a failure.
func (p *stagePair) dial() (dialed, accepted *Conn) {
	p.t.Helper()
	p.dialIn <- &PeerAddr{Addr: p.addr}
	timeout := time.After(10 * time.Second)
	for dialed == nil || accepted == nil {
		select {
		case e := <-p.dialOut:
			dialed = e.(*Conn)
		case e := <-p.incoming:
			accepted = e.(*Conn)
		case <-time.After(5 * time.Millisecond):
			if info, _ := p.a.Peers.Peer(p.addr); info.Fails > 0 && dialed == nil {
				if accepted != nil {
					p.t.Fatal("the listener accepted a connection the dialer failed")
				}
				return nil, nil
			}
		case <-timeout:
			p.t.Fatal("no outcome from the dial after 10s")
		}
	}
	return dialed, accepted
}

// TestDialListenEncryption runs the Dial and Listen stages against each other: what each
// side ends up with, and how many connections the dialer opened for it.
func TestDialListenEncryption(t *testing.T) {
	for _, tc := range []struct {
		name           string
		dialer, lister Encryption
		want           string // cryptoOf on both sides
		conns          []int64
		fail           bool
	}{
		{"encrypted dial to an encrypted listener", EncryptRequire, EncryptRequire, "rc4", []int64{1, 2}, false},
		{"prefer to prefer", EncryptPrefer, EncryptPrefer, "plaintext", []int64{1, 2}, false},
		// The MSE attempt is closed, the plain one on a fresh connection works, and the
		// peer is dialled in plain from then on: 2 connections, then 1.
		{"MSE to a plain-only listener falls back", EncryptPrefer, EncryptOff, "", []int64{2, 3}, false},
		{"plain to an MSE-capable listener", EncryptOff, EncryptPrefer, "", []int64{1, 2}, false},
		{"require refuses plain", EncryptOff, EncryptRequire, "", []int64{1}, true},
		{"off refuses MSE, and require does not fall back", EncryptRequire, EncryptOff, "", []int64{1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newStagePair(t, tc.dialer, tc.lister)
			for i, want := range tc.conns {
				dialed, accepted := p.dial()
				if got := p.ln.n.Load(); got != want {
					t.Errorf("dial %d: the listener accepted %d connections in all, want %d", i+1, got, want)
				}
				if tc.fail {
					if dialed != nil {
						t.Fatalf("dial %d: connected (%q), want refused", i+1, cryptoOf(dialed))
					}
					continue
				}
				if dialed == nil {
					t.Fatalf("dial %d: failed, want connected", i+1)
				}
				if got, acc := cryptoOf(dialed), cryptoOf(accepted); got != tc.want || acc != tc.want {
					t.Errorf("dial %d: crypto %q dialing and %q accepting, want %q", i+1, got, acc, tc.want)
				}
				checkStream(t, dialed, accepted, 64<<10)
				dialed.Close()
				accepted.Close()
			}
		})
	}
}

// TestDialFallbackMemo: a peer remembered as plain is dialled in plain first; when that
// fails as a peer that now requires MSE fails, MSE is tried at once, and remembered.
func TestDialFallbackMemo(t *testing.T) {
	p := newStagePair(t, EncryptPrefer, EncryptRequire)
	p.a.dialKinds.set(p.addr, true)
	dialed, accepted := p.dial()
	if dialed == nil {
		t.Fatal("dial failed, want connected over MSE after plain was refused")
	}
	if got := p.ln.n.Load(); got != 2 {
		t.Errorf("the listener accepted %d connections, want 2 (plain, then MSE)", got)
	}
	if got := cryptoOf(dialed); got != "rc4" {
		t.Errorf("crypto %q, want rc4", got)
	}
	if p.a.dialKinds.plainFirst(p.addr) {
		t.Error("the peer is still remembered as plain")
	}
	dialed.Close()
	accepted.Close()
}

// TestDialKindsBound: the memo forgets everything when full, so it never grows past its bound.
func TestDialKindsBound(t *testing.T) {
	var k dialKinds
	for i := range maxDialKinds + 10 {
		k.set(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881), true)
	}
	if n := len(k.plain); n > maxDialKinds || n == 0 {
		t.Errorf("%d peers remembered, want 1..%d", n, maxDialKinds)
	}
}

// TestOtherKind: which failures send the dialer to the other kind of handshake at once.
func TestOtherKind(t *testing.T) {
	timeout := &net.OpError{Op: "read", Err: errTimeout{}}
	for _, tc := range []struct {
		name    string
		err     error
		overMSE bool
		want    bool
	}{
		{"MSE: peer hung up", errors.Join(errMSE, io.EOF), true, true},
		{"MSE: timeout", errors.Join(errMSE, timeout), true, false},
		{"MSE done, BitTorrent handshake failed", io.EOF, true, false},
		{"MSE: dial refused", &net.OpError{Op: "dial", Err: errors.New("refused")}, true, false},
		{"plain: peer hung up", io.EOF, false, true},
		{"plain: another torrent", errNoRetry, false, false},
		{"plain: timeout", timeout, false, false},
		{"canceled", errors.Join(errMSE, context.Canceled), true, false},
	} {
		if got := otherKind(tc.err, tc.overMSE); got != tc.want {
			t.Errorf("%s: otherKind(%v, %v) = %v, want %v", tc.name, tc.err, tc.overMSE, got, tc.want)
		}
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

// TestParseEncryption: names round-trip; anything else is refused.
func TestParseEncryption(t *testing.T) {
	for _, e := range []Encryption{EncryptOff, EncryptPrefer, EncryptRequire} {
		if got, err := ParseEncryption(e.String()); got != e || err != nil {
			t.Errorf("ParseEncryption(%q) = %v, %v; want %v", e.String(), got, err, e)
		}
	}
	if _, err := ParseEncryption("forced"); err == nil {
		t.Error(`ParseEncryption("forced"): no error`)
	}
}

// TestMSEConnWritesAfterFailure: once a write fails, the cipher is ahead of the stream, and
// every later write fails too instead of sending garbage (or panicking in the package).
func TestMSEConnWritesAfterFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	client, server := tcpPair(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		EncryptIncoming(ctx, testSwarm(2, EncryptRequire), server, 5*time.Second)
	}()
	hc, err := EncryptOutgoing(ctx, testSwarm(1, EncryptRequire), client, 5*time.Second)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	big := make([]byte, 1<<20)
	var first error
	for range 50 {
		if _, first = hc.Write(big); first != nil {
			break
		}
	}
	if first == nil {
		t.Fatal("writes to a closed peer never failed")
	}
	if _, err := hc.Write([]byte("x")); err == nil {
		t.Error("a write after a failed one succeeded")
	}
}
