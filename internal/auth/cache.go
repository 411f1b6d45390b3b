package auth

import (
	"crypto/sha256"
	"sync"
)

// verified remembers bcrypt outcomes. It is bounded: when full it starts
// over, which costs one bcrypt per active client and keeps memory fixed
// however many distinct wrong passwords are tried.
type verified struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]bool
}

func newVerified(max int) *verified {
	return &verified{max: max, m: make(map[[sha256.Size]byte]bool)}
}

func (v *verified) get(k [sha256.Size]byte) (ok, found bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ok, found = v.m[k]
	return ok, found
}

func (v *verified) put(k [sha256.Size]byte, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= v.max {
		clear(v.m)
	}
	v.m[k] = ok
}
