package seriesindex

import (
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"slices"

	"github.com/prometheus/prometheus/storage"
)

// deadOff marks a removed series in Index.offs; no arena offset reaches it
// (an arena stops a page short of 4 GiB).
const deadOff = math.MaxUint32

// batch is how much work (series unslotted, values or 16 refs of their
// postings removed) a step of Delete does under a lock before it lets the
// lock go: a millisecond or two.
const batch = 1024

// longList is the length from which a postings list is filtered without
// lock (rewriteList); a variable so that tests reach that with few series.
var longList = 16 * batch

// Delete removes the series for which drop returns true and returns how
// many it removed. The refs of the others do not change, and a removed ref
// is never given again (a head's samples are indexed by ref): adding a
// removed series again creates it under a new ref.
//
// drop runs with Index.mu held for writing, so no Add or Lookup returns a
// ref between drop choosing it and its removal; drop must not call the
// Index. Then the chosen series are marked removed, in a new copy of the
// offsets (4 B a ref), and from then on no Add, Lookup, Has, AppendLabels
// or walk of all series finds them. That is the only step that stops the
// whole index for all series (the drop calls and the copy); the rest runs
// without lock or in batches of a millisecond or two, each under one
// shard's lock and Index.mu for reading (Adds and Lookups of that shard
// and creations wait) or under Index.mu (Adds, Lookups and queries wait),
// so that a removal of a million series does not stall appends for
// seconds. Meanwhile removed series are still in the hash
// tables and postings lists, their labels read in the offsets from before
// the mark (Index.pending): a query may then get postings holding refs of
// removed series, as it may when it reads postings before a Delete (a
// head's Series skips them with storage.ErrNotFound, as Prometheus's
// querier does for series its head collected), and label values only
// removed series had. Deletes run one at a time.
//
// A removed series still costs its 4 B in the offsets, for good. The
// symbols of its names and values that no other series has (the string, a
// 4-byte offset and 5 bytes of table a symbol) stay until such symbols are
// half of all; then the others are renumbered and every series encoded
// again, with every lock held. Its encoded labels stay in the series arena
// until removed series hold a quarter of it; then the live series are
// copied to new pages. Old pages are freed once no snapshot (Reader call)
// and no string handed out uses them.
func (ix *Index) Delete(drop func(ref uint32) bool) int {
	return ix.DeleteThen(drop, nil)
}

// DeleteThen is Delete calling marked, if it removes any series, as soon
// as they are marked removed: from then on no Add, Lookup, Has or walk of
// the series returns them, though Delete has yet to take them out of its
// tables. marked runs holding no lock of the index. A head lets its
// commits through from there (head/truncate.go).
func (ix *Index) DeleteThen(drop func(ref uint32) bool, marked func()) int {
	ix.delMu.Lock()
	defer ix.delMu.Unlock()
	gone, isGone := ix.mark(drop)
	if len(gone) == 0 {
		return 0
	}
	if marked != nil {
		marked()
	}
	ix.pause()
	ix.removeFromShards(gone, isGone)
	ix.unused += ix.removePostings(gone, isGone)
	ix.shrinkValues()
	ix.finish(gone)
	ix.collectSymbols()
	return len(gone)
}

// removal is what Delete keeps while it removes series: the offsets from
// before the mark, where the removed series' labels are still read (in
// the arena of then, whose pages never change).
type removal struct {
	offs   []uint32
	series arena
}

// pause lets the Adds and queries waiting for a lock Delete just let go
// run before it takes one again (on few cores they would otherwise often
// find it taken again), and runs the test hook; Delete holds no lock.
func (ix *Index) pause() {
	runtime.Gosched()
	if ix.deleteHook != nil {
		ix.deleteHook()
	}
}

// mark chooses the series to remove and marks them removed in a new copy
// of the offsets (a snapshot may be reading the old one), keeping the old
// one in ix.pending until they are out of the tables. Its memory is taken
// (and touched) before the lock: allocating megabytes while the collector
// runs makes the allocator help it mark, which would lengthen the hold.
func (ix *Index) mark(drop func(ref uint32) bool) (gone []uint32, isGone bitset) {
	n := ix.MaxRef()
	n += n/16 + 64 // room for the series created meanwhile, and after
	offs, isGone := make([]uint32, 0, n), make(bitset, n/64+1)
	touch(offs[:n])
	removed := ix.markLocked(drop, &offs, &isGone)
	if removed == 0 {
		return nil, nil
	}
	gone = make([]uint32, 0, removed)
	for i, w := range isGone {
		for ; w != 0; w &= w - 1 {
			gone = append(gone, uint32(i*64+bits.TrailingZeros64(w)))
		}
	}
	return gone, isGone
}

// markLocked is mark's part under ix.mu: it fills isGone and, if it
// marked any series, offs, and returns how many it marked.
func (ix *Index) markLocked(drop func(ref uint32) bool, offs *[]uint32, isGone *bitset) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.offs)/64 >= len(*isGone) {
		*isGone = make(bitset, len(ix.offs)/64+1)
	}
	removed := 0
	for i, off := range ix.offs {
		if off != deadOff && drop(uint32(i+1)) {
			isGone.set(uint32(i + 1))
			removed++
		}
	}
	if removed == 0 {
		return 0
	}
	o := append(*offs, ix.offs...)
	for i, w := range *isGone {
		for ; w != 0; w &= w - 1 {
			o[i*64+bits.TrailingZeros64(w)-1] = deadOff
		}
	}
	ix.pending = &removal{offs: ix.offs, series: ix.series}
	ix.offs, *offs = o, o
	ix.publish()
	ix.removed += removed
	return removed
}

// labelsAt returns series ref's encoded labels, those of a series Delete
// is removing too. The caller holds ix.mu.
func (ix *Index) labelsAt(ref uint32) []byte {
	if off := ix.offs[ref-1]; off != deadOff {
		return ix.series.bytes(off)
	}
	return ix.pending.series.bytes(ix.pending.offs[ref-1])
}

// bitset is a set of refs, a bit each.
type bitset []uint64

func (b bitset) set(r uint32)      { b[r/64] |= 1 << (r % 64) }
func (b bitset) has(r uint32) bool { return int(r/64) < len(b) && b[r/64]&(1<<(r%64)) != 0 }

// count is the number of refs in b.
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// removeFromShards forgets the gone series in the series hash tables,
// shard by shard, and shrinks each table removals left at most a quarter
// full. When they are a quarter of the series or more, each table is
// rebuilt without them (rebuildShard), which reads the labels of each
// series left once; else they are removed in batches under the shard's mu
// and ix.mu (read), their hashes computed first, without lock, from the
// labels of before the mark.
func (ix *Index) removeFromShards(gone []uint32, isGone bitset) {
	if len(gone)*4 >= ix.Len()+len(gone) {
		for i := range ix.shards {
			ix.rebuildShard(&ix.shards[i], isGone)
		}
		return
	}
	var byShard [1 << shardBits][]goneSeries
	for _, ref := range gone {
		h := maphash.Bytes(ix.seed, ix.pending.series.bytes(ix.pending.offs[ref-1]))
		s := h >> (64 - shardBits)
		byShard[s] = append(byShard[s], goneSeries{ref: ref, h: h})
	}
	for i := range ix.shards {
		for todo := byShard[i]; len(todo) > 0; ix.pause() {
			todo = ix.unslotBatch(&ix.shards[i], todo)
		}
	}
}

// goneSeries is a series Delete removes and the hash of its labels.
type goneSeries struct {
	ref uint32
	h   uint64
}

// unslotBatch removes a batch of todo's series from sh and returns the
// rest; after the last it shrinks sh if due.
func (ix *Index) unslotBatch(sh *shard, todo []goneSeries) []goneSeries {
	n := min(len(todo), batch)
	sh.mu.Lock()
	ix.mu.RLock()
	for _, g := range todo[:n] {
		ix.unslotSeries(sh, slotOf(sh, g))
	}
	shrink := shrunk(sh.n, len(sh.table), 64) > 0
	ix.mu.RUnlock()
	sh.mu.Unlock()
	if n == len(todo) && shrink {
		ix.rebuildShard(sh, nil)
	}
	return todo[n:]
}

// rebuildShard moves sh's series but the gone ones (isGone; nil for
// none) to a new table, shrunk if that leaves it at most a quarter full,
// rehashed without lock from a copy of sh's table (a read of each series'
// labels, a cache miss each); under the locks the series created
// meanwhile, in slots that were empty, are put in. If sh grew meanwhile it
// starts again.
func (ix *Index) rebuildShard(sh *shard, isGone bitset) {
	var old []uint32
	for {
		was, n, v := ix.copyShard(sh, &old)
		dropped := 0
		for _, r := range old {
			if isGone.has(r) {
				dropped++
			}
		}
		size := len(old)
		if s := shrunk(n-dropped, size, 64); s > 0 {
			size = s
		} else if dropped == 0 {
			return
		}
		ix.pause()
		table, tags := make([]uint32, size), make([]uint8, size)
		for _, r := range old {
			if r == 0 || isGone.has(r) {
				continue
			}
			enc, ok := v.labelsOf(storage.SeriesRef(r))
			if !ok {
				panic("seriesindex: a removed series is left in its shard")
			}
			putSeries(table, tags, maphash.Bytes(ix.seed, enc), r)
		}
		if ix.putCreated(sh, was, old, table, tags, dropped) {
			return
		}
	}
}

// copyShard copies sh's table into *old, taken before the locks (see
// mark), and returns the table, its number of series and a view to read
// their labels in.
func (ix *Index) copyShard(sh *shard, old *[]uint32) (was []uint32, n int, v view) {
	for {
		sh.mu.Lock()
		ix.mu.RLock()
		size := len(sh.table)
		if len(*old) == size {
			was, n = sh.table, sh.n
			copy(*old, was)
			v = view{offs: ix.offs, series: ix.series}
		}
		ix.mu.RUnlock()
		sh.mu.Unlock()
		if was != nil {
			return was, n, v
		}
		*old = make([]uint32, size)
		touch(*old)
	}
}

// putCreated installs table and tags as sh's, with the series created
// since sh's table was old put in and dropped series fewer, unless sh
// grew (false).
func (ix *Index) putCreated(sh *shard, was, old, table []uint32, tags []uint8, dropped int) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if &sh.table[0] != &was[0] {
		return false
	}
	for i, r := range sh.table {
		if r != old[i] { // only Adds changed it: a slot filled
			putSeries(table, tags, maphash.Bytes(ix.seed, ix.labelsAt(r)), r)
		}
	}
	sh.table, sh.tags, sh.n = table, tags, sh.n-dropped
	if sh.n*4 > len(sh.table)*3 {
		ix.grow(sh)
	}
	return true
}

// putSeries puts series r, whose labels hash to h, in the first empty
// slot of its probe.
func putSeries(table []uint32, tags []uint8, h uint64, r uint32) {
	mask := len(table) - 1
	i := int(h) & mask
	for table[i] != 0 {
		i = (i + 1) & mask
	}
	table[i], tags[i] = r, tag(h)
}

// slotOf is the slot of sh that holds series g. The caller holds sh.mu.
func slotOf(sh *shard, g goneSeries) int {
	mask := len(sh.table) - 1
	for i := int(g.h) & mask; ; i = (i + 1) & mask {
		switch sh.table[i] {
		case g.ref:
			return i
		case 0:
			panic("seriesindex: a series is missing from its shard")
		}
	}
}

// unslotSeries empties slot i of sh and moves back the entries after it
// that their hash lets move, so that linear probing still finds every
// series without tombstones. The caller holds sh.mu and ix.mu.
func (ix *Index) unslotSeries(sh *shard, i int) {
	mask := len(sh.table) - 1
	for j := (i + 1) & mask; sh.table[j] != 0; j = (j + 1) & mask {
		h := maphash.Bytes(ix.seed, ix.labelsAt(sh.table[j]))
		if canMove(int(h)&mask, i, j) {
			sh.table[i], sh.tags[i] = sh.table[j], sh.tags[j]
			i = j
		}
	}
	sh.table[i], sh.tags[i] = 0, 0
	sh.n--
}

// canMove reports whether the entry at slot j, whose home slot is h, may
// move to the hole at i: unless h lies cyclically in (i, j], the probe for
// the entry passes i before j.
func canMove(h, i, j int) bool {
	if i <= j {
		return h <= i || h > j
	}
	return h <= i && h > j
}

// shrunk returns the size, at least least, to which a table of size slots
// holding n entries shrinks, 0 if it stays. A table grows when three
// quarters full, to three eighths, so only removing a third of its entries
// or more shrinks it (to at most half full): a head's memory follows its
// active series down as it does up.
func shrunk(n, size, least int) int {
	if n*4 > size || size <= least {
		return 0
	}
	to := least
	for to < n*2 {
		to *= 2
	}
	if to >= size {
		return 0
	}
	return to
}

// removePostings takes the gone series out of the postings of each value
// they have, and values no series has any more out of their tables, in
// batches under ix.mu. Which values those are is read first, without
// lock, from the labels of before the mark; lists longer than a batch are
// filtered without lock too (rewriteList). It returns how many names and
// values the gone series had, which bounds how many symbols they leave
// unused.
func (ix *Index) removePostings(gone []uint32, isGone bitset) int {
	pairs := make(map[[2]uint32]uint32, len(gone)) // name and value → a gone series with them
	for _, ref := range gone {
		eachPair(ix.pending.series.bytes(ix.pending.offs[ref-1]), func(n, v uint32) {
			pairs[[2]uint32{n, v}] = ref
		})
	}
	todo := make([]goneValue, 0, len(pairs))
	perName := map[uint32]int{}
	for nv, ref := range pairs {
		todo = append(todo, goneValue{name: nv[0], value: nv[1], ref: ref})
		perName[nv[0]]++
	}
	values := len(pairs)
	clear(pairs)
	rebuild := ix.toRebuild(perName)
	var long []goneValue
	for len(todo) > 0 {
		todo, long = ix.unpostBatch(todo, long, isGone, rebuild)
		ix.pause()
	}
	for _, g := range long {
		ix.rewriteList(g, isGone)
	}
	for name := range rebuild {
		ix.rebuildTable(name, isGone)
		ix.pause()
	}
	return len(perName) + values
}

// toRebuild returns the names of which gone series have a quarter of the
// values or more: their tables are rebuilt without the values only a gone
// series had (rebuildTable), instead of unslotting each.
func (ix *Index) toRebuild(perName map[uint32]int) map[uint32]bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := map[uint32]bool{}
	for name, n := range perName {
		if n*4 >= ix.names[name].n {
			out[name] = true
		}
	}
	return out
}

// goneValue is a label value of a series Delete removes.
type goneValue struct {
	name, value, ref uint32
}

// unpostBatch takes the gone series out of the postings of a batch of
// todo's values and returns the rest, and long with the values whose
// lists are longer than a batch added; it leaves the values of tables to
// rebuild that only a gone series has to rebuildTable. Values move back
// in their tables, so ix.deletes changes (see tableAt).
func (ix *Index) unpostBatch(todo, long []goneValue, isGone bitset, rebuild map[uint32]bool) (rest, longer []goneValue) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.deletes++
	work := 0
	for len(todo) > 0 && work < batch {
		g := todo[0]
		todo = todo[1:]
		t := ix.names[g.name]
		i := ix.slotHeld(t, g.value, g.ref)
		if rebuild[g.name] && t.slots[i] == g.ref {
			work++
			continue
		}
		n := ix.seriesOf(t.slots[i])
		if n > longList {
			long = append(long, g)
			continue
		}
		work += 1 + n/16
		if p := ix.without(t.slots[i], isGone); p != 0 {
			t.slots[i] = p
		} else {
			ix.unslotValue(t, i)
		}
		if t.n == 0 {
			delete(ix.names, g.name)
		}
	}
	return todo, long
}

// rewriteList takes the gone series out of the long list of value g: it
// reads the list under ix.mu (read), filters it without lock, and puts it
// back under ix.mu with the series added meanwhile (appended: they are
// newer than any in the list), so that creations and queries wait for
// neither the decoding nor the encoding of a million refs.
func (ix *Index) rewriteList(g goneValue, isGone bitset) {
	ix.mu.RLock()
	t := ix.names[g.name]
	p := t.slots[ix.slotHeld(t, g.value, g.ref)]
	was := ix.lists[p&^listBit]
	ix.mu.RUnlock()
	ix.pause()
	kept := was.appendTo(nil)
	kept = slices.DeleteFunc(kept, isGone.has)
	var l list
	for _, r := range kept {
		l.add(r)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.deletes++
	now := &ix.lists[p&^listBit]
	added := list{data: now.data[len(was.data):]} // gaps from was.last on
	for _, r := range added.appendTo(nil) {
		l.add(was.last + r)
	}
	if l.n > 1 {
		*now = l
		return
	}
	t = ix.names[g.name]
	i := ix.slotHeld(t, g.value, g.ref)
	*now = list{}
	ix.freeLists = append(ix.freeLists, p&^listBit)
	if l.n == 1 {
		t.slots[i] = l.first()
		return
	}
	ix.unslotValue(t, i)
	if t.n == 0 {
		delete(ix.names, g.name)
	}
}

// slotHeld is slot(t, v) for a value v that series ref has: a slot holding
// another single series cannot be v's (whose posting is ref or a list), so
// only lists' values are read, which spares a read of a series (a cache
// miss) per slot probed in tables of values unique per series.
func (ix *Index) slotHeld(t *values, v, ref uint32) int {
	mask := len(t.slots) - 1
	for i := home(v, mask); ; i = (i + 1) & mask {
		p := t.slots[i]
		if p == ref || p&listBit != 0 && ix.valueOf(t, p) == v {
			return i
		}
		if p == 0 {
			panic("seriesindex: a series' value is missing from its table")
		}
	}
}

// without returns posting p, of a value a gone series has, without the
// gone series: 0 if none is left, a single series inline, else a list,
// rewritten into new memory so that walks of the old one (gapPostings) are
// not disturbed.
func (ix *Index) without(p uint32, isGone bitset) uint32 {
	if p&listBit == 0 { // the gone series alone had the value
		return 0
	}
	l := &ix.lists[p&^listBit]
	kept := l.appendTo(make([]uint32, 0, l.n))
	kept = slices.DeleteFunc(kept, isGone.has) // refs created since the mark are past its end
	if len(kept) > 1 {
		*l = list{}
		for _, r := range kept {
			l.add(r)
		}
		return p
	}
	*l = list{}
	ix.freeLists = append(ix.freeLists, p&^listBit)
	if len(kept) == 1 {
		return kept[0]
	}
	return 0
}

// unslotValue empties slot i of t as unslotSeries does for a shard.
func (ix *Index) unslotValue(t *values, i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		if canMove(home(ix.valueOf(t, t.slots[j]), mask), i, j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = 0
	t.n--
}

// shrinkValues shrinks the values tables removals left at most a quarter
// full.
func (ix *Index) shrinkValues() {
	for _, name := range ix.shrinkable() {
		ix.rebuildTable(name, nil)
		ix.pause()
	}
}

// shrinkable lists the names whose values tables are to shrink.
func (ix *Index) shrinkable() []uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []uint32
	for name, t := range ix.names {
		if shrunk(t.n, len(t.slots), 8) > 0 {
			out = append(out, name)
		}
	}
	return out
}

// rebuildTable moves the postings of name's values to a new table, without
// the values only a gone series had (isGone; nil for none), shrunk if
// that leaves it at most a quarter full. The table is built without lock
// from a copy of the slots, reading a series per value (a cache miss
// each) where unslotting each gone value would read several; then, under
// ix.mu, the slots that changed meanwhile are put in: values created (a
// slot filled) and values whose single series became a list (the series
// replaced by the list, or, if it is gone, the list without it, as for
// the lists a gone series' value became before the copy). If the table
// grew meanwhile it starts again.
func (ix *Index) rebuildTable(name uint32, isGone bitset) {
	for !ix.tryRebuild(name, isGone) {
	}
}

// tryRebuild is rebuildTable; it reports false if the table grew.
func (ix *Index) tryRebuild(name uint32, isGone bitset) bool {
	t, was, old, lists, v := ix.copyTable(name)
	if t == nil {
		return true
	}
	ix.pause()
	firsts := map[uint32]uint32{} // list → its first series
	for _, p := range old {
		if p&listBit != 0 {
			firsts[p] = lists[p&^listBit].first()
		}
	}
	n, changes := 0, 0
	for _, p := range old {
		switch {
		case p&listBit == 0 && isGone.has(p):
			changes++
		case p != 0:
			n++
			if p&listBit != 0 && isGone.has(firsts[p]) {
				changes++
			}
		}
	}
	size := len(old)
	if s := shrunk(n, size, 8); s > 0 {
		size = s
	} else if changes == 0 {
		return true
	}
	slots, mask := make([]uint32, size), size-1
	var stale []uint32 // lists that hold a gone series
	for _, p := range old {
		if p == 0 || p&listBit == 0 && isGone.has(p) {
			continue
		}
		first := p
		if p&listBit != 0 {
			first = firsts[p]
		}
		enc, _ := v.labelsOf(storage.SeriesRef(first))
		if isGone.has(first) { // a gone series' value, a list since it was left here
			enc = ix.pending.series.bytes(ix.pending.offs[first-1])
			stale = append(stale, p)
		}
		val, _ := valueIn(enc, name)
		putValue(slots, home(val, mask), 0, p)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(t.slots) != len(was) || &t.slots[0] != &was[0] {
		return false
	}
	for _, p := range stale {
		putValue(slots, home(ix.valueOf(t, p), mask), p, ix.without(p, isGone))
	}
	ix.putChanged(t, slots, old, isGone, n)
	return true
}

// copyTable returns name's values table, its slots and a copy of them,
// and copies of the lists' headers (their data before their ends never
// changes) and of the series offsets to read them without lock; t is nil
// if no series has name. The copies' memory is taken before the lock
// (see mark).
func (ix *Index) copyTable(name uint32) (t *values, was, old []uint32, lists []list, v view) {
	for {
		ix.mu.RLock()
		t = ix.names[name]
		if t == nil {
			ix.mu.RUnlock()
			return nil, nil, nil, nil, v
		}
		size, nlists := len(t.slots), len(ix.lists)
		if len(old) == size && cap(lists) >= nlists {
			was, lists = t.slots, append(lists[:0], ix.lists...)
			copy(old, was)
			v = view{offs: ix.offs, series: ix.series}
			ix.mu.RUnlock()
			return t, was, old, lists, v
		}
		ix.mu.RUnlock()
		old, lists = make([]uint32, size), make([]list, 0, nlists+nlists/8+8)
		touch(old)
	}
}

// touch writes a word of each page of b, so that the kernel maps them in
// before a copy under a lock writes b: a fresh page faults on first write,
// and a fault can take long (tens of milliseconds were seen for 16 MB).
func touch(b []uint32) {
	for i := 0; i < len(b); i += 1024 {
		b[i] = 0
	}
}

// putChanged puts in slots, t's new table holding n values, those of t's
// slots that changed since they were old, and installs it. The caller
// holds ix.mu.
func (ix *Index) putChanged(t *values, slots, old []uint32, isGone bitset, n int) {
	mask := len(slots) - 1
	for i, p := range t.slots {
		switch {
		case p == old[i]:
		case old[i] != 0 && isGone.has(old[i]): // a gone series' value, a list since
			p = ix.without(p, isGone)
			putValue(slots, home(ix.valueOf(t, p), mask), 0, p)
			n++
		default:
			putValue(slots, home(ix.valueOf(t, p), mask), old[i], p)
			if old[i] == 0 {
				n++
			}
		}
	}
	t.slots, t.n = slots, n
	ix.deletes++
	if t.n == 0 {
		delete(ix.names, t.name)
	} else if t.n*4 > len(t.slots)*3 {
		ix.growValues(t)
	}
}

// putValue puts posting p in the first slot from i on that holds was (0
// for an empty one).
func putValue(slots []uint32, i int, was, p uint32) {
	mask := len(slots) - 1
	for slots[i] != was {
		i = (i + 1) & mask
	}
	slots[i] = p
}

// finish ends a removal: the tables no longer hold the gone series, so
// their labels need not be read any more, and once removed series hold a
// quarter of the series arena the live ones are copied to a new one,
// without lock; only those created meanwhile are copied under ix.mu.
func (ix *Index) finish(gone []uint32) {
	garbage := 0
	for _, ref := range gone {
		garbage += entrySize(len(ix.pending.series.bytes(ix.pending.offs[ref-1])))
	}
	ix.mu.Lock()
	ix.pending = nil
	ix.garbage += garbage
	compact := ix.garbage*4 >= ix.series.total
	v := view{offs: ix.offs, series: ix.series}
	ix.mu.Unlock()
	if !compact {
		return
	}
	var a arena
	offs := make([]uint32, 0, len(v.offs)+len(v.offs)/16)
	offs = v.copySeries(&a, offs)
	ix.pause()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	offs = view{offs: ix.offs[len(v.offs):], series: ix.series}.copySeries(&a, offs)
	ix.series, ix.offs, ix.garbage = a, offs, 0
	ix.publish()
}

// copySeries copies v's series to a and appends their offsets in a to
// offs, deadOff for removed ones.
func (v view) copySeries(a *arena, offs []uint32) []uint32 {
	for _, off := range v.offs {
		if off != deadOff {
			off = a.add(v.series.bytes(off))
		}
		offs = append(offs, off)
	}
	return offs
}
