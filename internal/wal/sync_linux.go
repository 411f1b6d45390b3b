package wal

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable with the metadata needed to read it back
// (its size), without the rest (times): no journal commit for a write that
// only adds data.
var fdatasync = func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
