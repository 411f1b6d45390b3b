package headchunks

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzChunksAreTheHeads holds Buffer to Prometheus's head on any sequence
// of samples: each 11 bytes of input are a series (of 4), a timestamp step
// (which may go back) and a value drawn from the input's bits or a few
// special ones; the two must take and refuse the same samples and end with
// the same chunks, byte for byte, and so must a Batch of the same samples.
func FuzzChunksAreTheHeads(f *testing.F) {
	f.Add([]byte("\x00\x10\x27\x00\x00\x00\x00\x00\x00\xf0\x3f\x01\x10\x27\x00\x00\x00\x00\x00\x00\x00\x40"), int64(7200000))
	f.Add(make([]byte, 11*300), int64(1000))
	f.Fuzz(func(t *testing.T, in []byte, chunkRange int64) {
		if chunkRange <= 0 || chunkRange > math.MaxInt32 || len(in) > 11*2000 {
			return
		}
		var samples []sample
		last := [4]int64{}
		for ; len(in) >= 11; in = in[11:] {
			s := int(in[0] % 4)
			step := int64(int16(binary.LittleEndian.Uint16(in[1:])))
			if in[0]&0x80 != 0 {
				step *= 1000
			}
			last[s] += step
			v := math.Float64frombits(binary.LittleEndian.Uint64(in[3:]))
			switch in[0] >> 4 & 7 {
			case 1:
				v = float64(in[3])
			case 2:
				v = math.NaN()
			}
			samples = append(samples, sample{s, last[s], v})
		}
		b, h := newBuffer(t, chunkRange), newHead(t, chunkRange)
		given := appendBoth(t, b, h, samples)
		sameChunks(t, b, h, 4)
		batched := newBuffer(t, chunkRange)
		bt := batched.Batch()
		for _, s := range given {
			bt.Add(uint32(s.series+1), s.t, s.v)
		}
		bt.Flush()
		sameBuffers(t, batched, b, 4)
	})
}
