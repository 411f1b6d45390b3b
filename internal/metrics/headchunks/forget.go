package headchunks

// Forget gives back the records of series refs, which the head removed
// and never gives again: a page of records is freed once every series in
// it is removed. Churn removes series in the order they were created, so
// whole pages go, and a removed series costs its 40-byte record only
// until its page's others are removed too. Series that still hold a chunk
// are left alone. Appends and reads wait meanwhile.
func (b *Buffer) Forget(refs []uint32) {
	for i := range b.stripes {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := range b.stripes {
			b.stripes[i].Unlock()
		}
	}()
	var touched []int
	for _, ref := range refs {
		if s := b.existing(ref); s != nil && s.loc == 0 && s.lastClosed == 0 && ref != 0 {
			s.gone = true
			if p := int(ref >> pageBits); len(touched) == 0 || touched[len(touched)-1] != p {
				touched = append(touched, p)
			}
		}
	}
	b.freePages(touched)
}

// freePages drops the pages of touched whose series are all removed
// (ref 0, never a series', counts as removed). The caller holds every
// stripe lock; pagesMu keeps a growing record from storing the old list.
func (b *Buffer) freePages(touched []int) {
	b.pagesMu.Lock()
	defer b.pagesMu.Unlock()
	pages := *b.pages.Load()
	var kept []*[pageSize]series
	for _, p := range touched {
		if pages[p] == nil || !allGone(pages[p], p) {
			continue
		}
		if kept == nil {
			kept = append([]*[pageSize]series(nil), pages...)
		}
		kept[p] = nil
	}
	if kept != nil {
		b.pages.Store(&kept)
	}
}

func allGone(page *[pageSize]series, p int) bool {
	for i := range page {
		if !page[i].gone && (p != 0 || i != 0) {
			return false
		}
	}
	return true
}
