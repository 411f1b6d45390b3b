package forward

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/s2"

	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// Grouped remote-write records. The receiver's hot path (a v1 request whose
// series it knows, metrics.RawV1Appendable) queues the request already split
// the way the shards send it: its series grouped by the hash of their label
// fields modulo the group count, each group snappy-compressed on its own. A
// shard batches groups by joining their compressed blocks (the copies of a
// snappy block point back within the block, so the elements of several
// blocks under one length header are one block, which decodes to the joined
// messages: a v1 WriteRequest), so the send side neither decompresses,
// scans nor compresses what the receiver had decoded already.
//
//	body  = groupedMagic uvarint(groups) group…
//	group = uvarint(g) uvarint(items) varint(newest) uvarint(len(block)) block
//
// A destination whose shard count divides the group count sends group g on
// shard g mod shards, which is where the series' hash puts it; any other
// decompresses the groups and shards their series by hash, as it does
// records written by the other paths (a snappy-compressed WriteRequest).

// groupedMagic begins a grouped body. As the start of a snappy block it
// would declare 4 GiB − 1 decoded bytes, which no receiver accepts (bodies
// are capped at 32 MiB): a record of the other kind, also one queued by an
// earlier version, never begins with it.
var groupedMagic = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}

// maxGroups bounds the group count that the destinations' shard counts
// make (their least common multiple).
const maxGroups = 256

// groupCount is the least common multiple of the shard counts, or, when that
// is over maxGroups, the largest shard count (other destinations then
// reshard what they read).
func groupCount(dests []Destination) int {
	g, largest := 1, 1
	for _, d := range dests {
		n := d.Queue.Shards
		largest = max(largest, n)
		if g > 0 {
			if g = g / gcd(g, n) * n; g > maxGroups {
				g = 0
			}
		}
	}
	if g == 0 {
		return largest
	}
	return g
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// grouper gathers v1 fields (series, metadata) by group and cuts each group
// into a snappy block once it holds maxItems items, so that no block makes
// a batch much larger than the destination's max_batch_items.
type grouper struct {
	maxItems int
	raw      [][]byte // per group: fields not yet compressed
	items    []int
	newest   []int64
	enc      []byte
	// out takes each block; the block is reused once out returns.
	out func(g int, block []byte, items int, newest int64)
}

var grouperPool = sync.Pool{New: func() any { return new(grouper) }}

func getGrouper(groups, maxItems int, out func(g int, block []byte, items int, newest int64)) *grouper {
	gr := grouperPool.Get().(*grouper)
	gr.raw = slices.Grow(gr.raw[:0], groups)[:groups] // keeps the buffers it had
	gr.items = slices.Grow(gr.items[:0], groups)[:groups]
	gr.newest = slices.Grow(gr.newest[:0], groups)[:groups]
	gr.maxItems, gr.out = maxItems, out
	return gr
}

func (gr *grouper) release() {
	gr.out = nil
	for g := range gr.raw {
		gr.raw[g] = gr.raw[g][:0] // left full when a split failed half way
	}
	clear(gr.items)
	clear(gr.newest)
	grouperPool.Put(gr)
}

func (gr *grouper) add(g int, field []byte, items int, newest int64) {
	if gr.items[g] > 0 && gr.items[g]+items > gr.maxItems {
		gr.cut(g)
	}
	gr.raw[g] = append(gr.raw[g], field...)
	gr.items[g] += items
	gr.newest[g] = max(gr.newest[g], newest)
}

// finish cuts every group that holds something, in group order.
func (gr *grouper) finish() {
	for g := range gr.raw {
		if len(gr.raw[g]) > 0 {
			gr.cut(g)
		}
	}
}

func (gr *grouper) cut(g int) {
	gr.enc = slices.Grow(gr.enc[:0], s2.MaxEncodedLen(len(gr.raw[g])))
	gr.enc = s2.EncodeSnappy(gr.enc[:cap(gr.enc)], gr.raw[g])
	gr.out(g, gr.enc, gr.items[g], gr.newest[g])
	gr.raw[g], gr.items[g], gr.newest[g] = gr.raw[g][:0], 0, 0
}

// appendGrouped appends the grouped body of req's series to rec. It returns
// false, and rec as it was, when a series' labels are not one run of fields
// (the receiver's series cache knows no such series, so this does not
// happen on its hot path).
func appendGrouped(rec []byte, req *remotewrite.Request, groups, maxItems int) ([]byte, bool) {
	if groups < 1 {
		return rec, false
	}
	for i := range req.Len() {
		if req.Key(i) == nil {
			return rec, false
		}
	}
	rec = binary.AppendUvarint(append(rec, groupedMagic...), uint64(groups))
	gr := getGrouper(groups, maxItems, func(g int, block []byte, items int, newest int64) {
		rec = binary.AppendUvarint(rec, uint64(g))
		rec = binary.AppendUvarint(rec, uint64(items))
		rec = binary.AppendVarint(rec, newest)
		rec = binary.AppendUvarint(rec, uint64(len(block)))
		rec = append(rec, block...)
	})
	defer gr.release()
	for i := range req.Len() {
		smps, hists := req.Samples(i), req.HistogramsV1(i)
		var newest int64
		if n := len(smps); n > 0 {
			newest = smps[n-1].T
		}
		if n := len(hists); n > 0 {
			newest = max(newest, hists[n-1].Timestamp)
		}
		g := int(xxhash.Sum64(req.Key(i)) % uint64(groups))
		gr.add(g, req.Field(i), len(smps)+len(hists), newest)
	}
	gr.finish()
	return rec, true
}

// group is one group of a grouped body.
type group struct {
	g      uint64
	items  int
	newest int64
	block  []byte
}

// readGroups calls fn with each group of a grouped body (after the magic).
func readGroups(b []byte, fn func(groups uint64, gr group)) error {
	groups, n := binary.Uvarint(b)
	if n <= 0 || groups == 0 {
		return errBadRecord
	}
	b = b[n:]
	for len(b) > 0 {
		var gr group
		var items, size uint64
		var ok bool
		if gr.g, b, ok = uvarint(b); !ok || gr.g >= groups {
			return errBadRecord
		}
		if items, b, ok = uvarint(b); !ok {
			return errBadRecord
		}
		newest, n := binary.Varint(b)
		if n <= 0 {
			return errBadRecord
		}
		b = b[n:]
		if size, b, ok = uvarint(b); !ok || size > uint64(len(b)) {
			return errBadRecord
		}
		gr.items, gr.newest, gr.block, b = int(items), newest, b[:size:size], b[size:]
		fn(groups, gr)
	}
	return nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// maxDecoded bounds what a queued block may decompress to: every receiver
// caps a request far below it, and a damaged length must not make a reader
// allocate gigabytes. No snappy element expands more than 64 bytes from 3
// either, so a block declaring more than 22 times its size is damaged.
const maxDecoded = 256 << 20

// decodeBlock appends the decompressed snappy block b to dst.
func decodeBlock(dst, b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return dst, fmt.Errorf("decode snappy: %w", err)
	}
	if n > maxDecoded || n > 22*len(b) {
		return dst, fmt.Errorf("decode snappy: %w: declares %d bytes", errBadRecord, n)
	}
	dst = slices.Grow(dst, n)
	if _, err := s2.Decode(dst[len(dst):len(dst)+n], b); err != nil {
		return dst, fmt.Errorf("decode snappy: %w", err)
	}
	return dst[:len(dst)+n], nil
}

func isGrouped(body []byte) bool { return bytes.HasPrefix(body, groupedMagic) }

// joinBlocks makes one snappy block of blocks: their elements under the
// sum of their decoded lengths.
func joinBlocks(blocks [][]byte) ([]byte, error) {
	if len(blocks) == 1 {
		return blocks[0], nil
	}
	var total uint64
	size := binary.MaxVarintLen64
	for _, b := range blocks {
		n, l := binary.Uvarint(b)
		if l <= 0 {
			return nil, fmt.Errorf("queued block: %w", errBadRecord)
		}
		total += n
		size += len(b) - l
	}
	out := binary.AppendUvarint(make([]byte, 0, size), total)
	for _, b := range blocks {
		_, l := binary.Uvarint(b)
		out = append(out, b[l:]...)
	}
	return out, nil
}
