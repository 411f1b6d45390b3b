//go:build !linux

package wal

import "os"

var fdatasync = (*os.File).Sync
