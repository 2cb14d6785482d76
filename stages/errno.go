package stages

import "syscall"

// errConnRefused is what a dial to a closed port returns (wrapped): such a peer may come
// back, so it is retried later.
var errConnRefused error = syscall.ECONNREFUSED
