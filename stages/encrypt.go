package stages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/anacrolix/torrent/mse"
)

// Encryption is a swarm's policy for Message Stream Encryption (MSE, also called PE or
// protocol encryption): a Diffie-Hellman exchange whose key, with the info hash, drives
// RC4, so that nothing on the wire says BitTorrent. MSE offers two crypto methods once its
// header is through: RC4 for the rest of the stream, or plaintext. The handshake itself is
// github.com/anacrolix/torrent/mse; Encrypt runs it before the BitTorrent handshake.
type Encryption uint8

const (
	// EncryptOff speaks plain BitTorrent only, both ways: an incoming MSE attempt is
	// closed, and the peer may retry in plain (aria2 and rtorrent do). It is the zero
	// value, so a pipeline configured without a policy (tests, programs embedding it)
	// behaves as before MSE; the command line defaults to EncryptPrefer.
	EncryptOff Encryption = iota
	// EncryptPrefer accepts both kinds of incoming handshake, and dials with MSE first,
	// offering RC4 and plaintext: a peer without MSE is dialled again in plain on a fresh
	// connection, and remembered as plain. Offered both, it picks plaintext, as libtorrent's
	// default does (allowed_enc_level pe_both, prefer_rc4 off): the handshake is hidden
	// from throttling middleboxes, and the data costs no RC4 (see the bench figures).
	EncryptPrefer
	// EncryptRequire speaks MSE with RC4 only, both ways: a plain handshake, or an MSE one
	// that offers only plaintext, is refused (qBittorrent's "require encryption",
	// libtorrent's pe_forced with pe_rc4).
	EncryptRequire
)

// ParseEncryption reads a policy by its name: prefer, require or off.
func ParseEncryption(s string) (Encryption, error) {
	for e := EncryptOff; e <= EncryptRequire; e++ {
		if e.String() == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("encryption %q: want prefer, require or off", s)
}

func (e Encryption) String() string {
	switch e {
	case EncryptOff:
		return "off"
	case EncryptPrefer:
		return "prefer"
	case EncryptRequire:
		return "require"
	}
	return fmt.Sprintf("Encryption(%d)", uint8(e))
}

// offer is what an initiator's crypto_provide holds.
func (e Encryption) offer() mse.CryptoMethod {
	if e == EncryptRequire {
		return mse.CryptoMethodRC4
	}
	return mse.AllSupportedCrypto
}

// choose is the receiver's crypto_select from what the initiator offered; 0 refuses.
func (e Encryption) choose(offered mse.CryptoMethod) mse.CryptoMethod {
	switch {
	case e == EncryptPrefer && offered&mse.CryptoMethodPlaintext != 0:
		return mse.CryptoMethodPlaintext
	case offered&mse.CryptoMethodRC4 != 0:
		return mse.CryptoMethodRC4
	}
	return 0
}

var (
	// errMSE marks a failed MSE handshake, as opposed to the BitTorrent one after it.
	errMSE = errors.New("mse")
	// ErrEncryptionRequired: a peer's plain handshake refused by EncryptRequire.
	ErrEncryptionRequired = errors.New("plain handshake refused: encryption required")
	// ErrEncryptionOff: a peer's MSE handshake refused by EncryptOff.
	ErrEncryptionOff = errors.New("encrypted handshake refused: encryption off")
)

// protocol is how every plain BitTorrent handshake starts (BEP 3).
const protocol = "\x13BitTorrent protocol"

// EncryptOutgoing runs the MSE handshake on nc, a connection we dialed, as the initiator,
// within timeout, and returns the connection the BitTorrent handshake goes over. The
// secret key is the info hash; it offers RC4 and plaintext, or RC4 alone under
// EncryptRequire. Errors wrap errMSE.
func EncryptOutgoing(ctx context.Context, sw *Swarm, nc net.Conn, timeout time.Duration) (net.Conn, error) {
	defer deadline(ctx, nc, timeout)()
	// The package's own context support reads in a goroutine it may leave behind; the
	// deadline, which ctx's end moves to now, stops reads and writes instead.
	rw, method, err := mse.InitiateHandshakeContext(context.Background(), nc, sw.InfoHash[:], nil, sw.Encryption.offer())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMSE, err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	logMethod(sw, nc, method, true)
	if method == mse.CryptoMethodPlaintext {
		return withReader(nc, rw, true), nil // rw is nc
	}
	return &mseConn{Conn: nc, rw: rw}, nil
}

// EncryptIncoming reads the first bytes of nc, a connection a peer opened, within timeout,
// and returns the connection the BitTorrent handshake goes over: nc as it came when they
// open a plain handshake, or the stream that the MSE handshake, run here as the receiver
// for our info hash, decrypts. The swarm's policy refuses one kind or the other with
// ErrEncryptionRequired or ErrEncryptionOff; the caller closes nc then. A connection a
// Session's router decrypted already (EncryptIncomingAny) is returned as it is.
func EncryptIncoming(ctx context.Context, sw *Swarm, nc net.Conn, timeout time.Duration) (net.Conn, error) {
	if cryptoOf(nc) != "" {
		return nc, nil
	}
	c, _, method, err := receive(ctx, sw.Encryption, nc, timeout, func(f func([]byte) bool) { f(sw.InfoHash[:]) })
	if err == nil && method != 0 {
		logMethod(sw, nc, method, false)
	}
	return c, err
}

// EncryptIncomingAny is EncryptIncoming for a listener that many torrents share (a
// Session): the MSE receiver tries each of infoHashes as the secret key (BEP-less MSE:
// the key is the info hash the peer wants), and the one the peer used is returned with
// the decrypted connection, whose plain handshake follows; encrypted is false for a
// plain handshake, which is returned as it came, for the caller to read.
func EncryptIncomingAny(ctx context.Context, policy Encryption, nc net.Conn, timeout time.Duration, infoHashes [][20]byte) (conn net.Conn, hash [20]byte, encrypted bool, err error) {
	conn, skey, method, err := receive(ctx, policy, nc, timeout, func(f func([]byte) bool) {
		for _, h := range infoHashes {
			if !f(h[:]) {
				return
			}
		}
	})
	copy(hash[:], skey)
	return conn, hash, method != 0, err
}

// receive tells a plain handshake from an MSE one on nc and, for MSE, runs the receiver
// with skeys; method is 0 for a plain handshake.
func receive(ctx context.Context, policy Encryption, nc net.Conn, timeout time.Duration, skeys mse.SecretKeyIter) (net.Conn, []byte, mse.CryptoMethod, error) {
	defer deadline(ctx, nc, timeout)()
	// A plain initiator sends its 68-byte handshake, an MSE one its 96-byte public key,
	// before waiting for us: 20 bytes are always there to tell them apart.
	var first [len(protocol)]byte
	if _, err := io.ReadFull(nc, first[:]); err != nil {
		return nil, nil, 0, fmt.Errorf("handshake: %w", err)
	}
	replayed := withReader(nc, io.MultiReader(bytes.NewReader(first[:]), nc), false)
	if string(first[:]) == protocol {
		if policy == EncryptRequire {
			return nil, nil, 0, ErrEncryptionRequired
		}
		return replayed, nil, 0, nil
	}
	if policy == EncryptOff {
		return nil, nil, 0, ErrEncryptionOff
	}
	var matched []byte // the key the receiver stopped at: the one the peer used
	rw, method, err := mse.ReceiveHandshake(context.Background(), replayed, func(f func([]byte) bool) {
		skeys(func(k []byte) bool {
			more := f(k)
			if !more {
				matched = k
			}
			return more
		})
	}, policy.choose)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %w", errMSE, err)
	}
	if ctx.Err() != nil {
		return nil, nil, 0, ctx.Err()
	}
	if method == mse.CryptoMethodPlaintext {
		return withReader(nc, rw, true), matched, method, nil // rw replays the initial payload, writes go to nc
	}
	return &mseConn{Conn: nc, rw: rw}, matched, method, nil
}

func logMethod(sw *Swarm, nc net.Conn, method mse.CryptoMethod, dialed bool) {
	if sw.Log == nil {
		return
	}
	crypto := "rc4"
	if method == mse.CryptoMethodPlaintext {
		crypto = "plaintext"
	}
	sw.Log.Debug("encrypted handshake", "stage", "encrypt", "peer", nc.RemoteAddr(), "dialed", dialed, "crypto", crypto)
}

// deadline bounds nc's reads and writes by timeout, and by ctx; the func it returns
// lifts both.
func deadline(ctx context.Context, nc net.Conn, timeout time.Duration) func() {
	nc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	return func() {
		stop()
		nc.SetDeadline(time.Time{})
	}
}

// mseConn is a connection whose stream RC4 encrypts: reads and writes go through the
// ciphers of the MSE handshake; deadlines, addresses and Close are the connection's.
type mseConn struct {
	net.Conn
	rw   io.ReadWriter
	mu   sync.Mutex // a cipher writes one stream: one writer at a time
	werr error      // a short write leaves the cipher ahead of the stream: every later write fails
}

func (c *mseConn) Read(b []byte) (int, error) { return c.rw.Read(b) }

func (c *mseConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n, err := c.rw.Write(b)
	if err != nil {
		c.werr = err
	}
	return n, err
}

// withReader returns nc with its reads taken from r (bytes read ahead, then nc); header
// says an MSE header came first. Writes go to nc as they are: on a TCP connection,
// embedding *net.TCPConn keeps net.Buffers writing with writev (an unexported method of
// package net, carried over by embedding only), which uploads rely on.
func withReader(nc net.Conn, r io.Reader, header bool) net.Conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		return &tcpReadConn{TCPConn: tc, r: r, mse: header}
	}
	return &readConn{Conn: nc, r: r, mse: header}
}

type readConn struct {
	net.Conn
	r   io.Reader
	mse bool
}

func (c *readConn) Read(b []byte) (int, error) { return c.r.Read(b) }

type tcpReadConn struct {
	*net.TCPConn
	r   io.Reader
	mse bool
}

func (c *tcpReadConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// cryptoOf says how a connection is protected: "rc4" (MSE, and RC4 for the stream),
// "plaintext" (MSE's header, then a plain stream) or "" (plain BitTorrent).
func cryptoOf(nc net.Conn) string {
	if c, ok := nc.(*Conn); ok {
		nc = c.Conn
	}
	switch c := nc.(type) {
	case *mseConn:
		return "rc4"
	case *readConn:
		if c.mse {
			return "plaintext"
		}
	case *tcpReadConn:
		if c.mse {
			return "plaintext"
		}
	}
	return ""
}

// dialKinds remembers, per peer, that it completed a plain handshake after an MSE one
// failed (EncryptPrefer): it is dialled in plain first from then on. Bounded: it forgets
// every peer when it is full, which costs each one failed MSE attempt at worst.
type dialKinds struct {
	mu    sync.Mutex
	plain map[netip.AddrPort]bool
}

const maxDialKinds = 4096

func (k *dialKinds) plainFirst(a netip.AddrPort) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.plain[a]
}

func (k *dialKinds) set(a netip.AddrPort, plain bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !plain {
		delete(k.plain, a)
		return
	}
	if k.plain == nil || len(k.plain) >= maxDialKinds {
		k.plain = make(map[netip.AddrPort]bool)
	}
	k.plain[a] = true
}

// dialEncrypted runs attempt, which dials a and completes the BitTorrent handshake over
// MSE (overMSE true) or plain, by the swarm's policy: EncryptOff dials plain, EncryptRequire
// MSE alone. Under EncryptPrefer it dials MSE first, or plain first for a peer that took
// plain last time, and when that handshake fails the way a peer without that kind fails
// (it hangs up or answers nonsense; not a timeout, which a dead peer would cost twice, nor
// a refused dial or a handshake for another torrent), it tries the other kind at once on a
// fresh connection. The kind that worked is remembered for the next dial.
func (sw *Swarm) dialEncrypted(a netip.AddrPort, attempt func(overMSE bool) (*Conn, error)) (*Conn, error) {
	switch sw.Encryption {
	case EncryptOff:
		return attempt(false)
	case EncryptRequire:
		return attempt(true)
	}
	useMSE := !sw.dialKinds.plainFirst(a)
	c, err := attempt(useMSE)
	if err != nil && otherKind(err, useMSE) {
		useMSE = !useMSE
		c, err = attempt(useMSE)
	}
	if err == nil {
		sw.dialKinds.set(a, !useMSE)
	}
	return c, err
}

// otherKind reports whether a handshake that failed with err, over MSE or plain, says the
// peer may speak the other kind.
func otherKind(err error, overMSE bool) bool {
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &op) && op.Op == "dial", errors.Is(err, errNoRetry),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout(),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case overMSE:
		return errors.Is(err, errMSE) // once MSE is through, the peer speaks it
	}
	return true
}
