//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package storage

import (
	"os"
	"syscall"
	"unsafe"
)

// iovMax is the most buffers one pwritev(2) takes (IOV_MAX on Linux).
const iovMax = 1024

// pwritev writes bufs one after another at off in f with one system call, or returns a
// short count, as pwritev(2) may. On 64-bit Linux the offset fits the call's low half.
func pwritev(f *os.File, bufs [][]byte, off int64) (int, error) {
	iov := make([]syscall.Iovec, 0, min(len(bufs), iovMax))
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == iovMax {
			break
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n uintptr
	var errno syscall.Errno
	// Through the raw conn, f cannot be closed (and its descriptor reused) during the call.
	err = rc.Write(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.Syscall6(syscall.SYS_PWRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), uintptr(off), 0, 0)
			if errno != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, &os.PathError{Op: "pwritev", Path: f.Name(), Err: errno}
	}
	return int(n), nil
}
