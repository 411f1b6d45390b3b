package wal

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable with the metadata needed to read it back
// (its size), without the rest (times): a write that changes no size or
// block map (an overwrite of a preallocated segment) needs no journal commit.
var fdatasync = func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
