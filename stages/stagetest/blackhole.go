//go:build unix

package stagetest

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// NewBlackHole returns an address on 127.0.0.1 where a connect hangs, as at a host that
// drops every packet: a listener with a backlog of 0 whose accept queue is full with one
// connection it never accepts, so that the kernel drops every further SYN. A dial there
// ends only at its own timeout. (A port where nothing listens would refuse at once.) It
// closes when the test ends.
func NewBlackHole(tb testing.TB) netip.AddrPort {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	// The filler: Linux queues backlog+1 connections. Where a kernel queues none, this
	// dial times out instead, and the queue is as full.
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		tb.Cleanup(func() { c.Close() })
	}
	return addr
}
