package seriesindex

import (
	"encoding/binary"
	"unsafe"
)

const (
	pageBits = 20
	pageSize = 1 << pageBits
	maxPages = 1 << (32 - pageBits)
)

// arena stores length-prefixed byte strings in 1 MiB pages that never move
// or change once written, so a string handed out by str stays valid without a
// copy, and the garbage collector sees a few large pointer-free pages instead
// of one object per entry. An offset is page<<pageBits | position (4 GiB in
// all, less a page so that no offset is deadOff); an entry longer than a
// page gets a page of its own.
type arena struct {
	pages [][]byte
	used  int // bytes used in the last page
	total int // bytes of all entries
}

// add appends b with its length and returns its offset.
func (a *arena) add(b []byte) uint32 {
	if len(b) == 0 {
		return a.addString("")
	}
	return a.addString(unsafe.String(&b[0], len(b)))
}

// addString is add for a string, without converting it to bytes.
func (a *arena) addString(b string) uint32 {
	var pre [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(pre[:], uint64(len(b)))
	need := k + len(b)
	if len(a.pages) == 0 || a.used+need > len(a.pages[len(a.pages)-1]) {
		if len(a.pages) == maxPages-1 {
			panic("seriesindex: arena full (4 GiB)")
		}
		a.pages = append(a.pages, make([]byte, max(pageSize, need)))
		a.used = 0
	}
	page := a.pages[len(a.pages)-1]
	off := uint32(len(a.pages)-1)<<pageBits | uint32(a.used)
	copy(page[a.used:], pre[:k])
	copy(page[a.used+k:], b)
	a.used += need
	a.total += need
	return off
}

// entrySize is the arena bytes an entry of n bytes takes.
func entrySize(n int) int {
	var pre [binary.MaxVarintLen64]byte
	return binary.PutUvarint(pre[:], uint64(n)) + n
}

// bytes returns the entry at off.
func (a *arena) bytes(off uint32) []byte {
	b := a.pages[off>>pageBits][off&(pageSize-1):]
	n, k := binary.Uvarint(b)
	return b[k : k+int(n)]
}

// str returns the entry at off as a string sharing the arena's memory.
func (a *arena) str(off uint32) string {
	b := a.bytes(off)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// size is the memory the arena holds.
func (a *arena) size() int {
	n := 0
	for _, p := range a.pages {
		n += len(p)
	}
	return n
}
