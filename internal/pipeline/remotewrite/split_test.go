package remotewrite

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
)

// TestSplitV1MatchesDecode splits random requests, with fields in any order
// and unknown fields among them, and compares every series with what the
// generated gogo code decodes.
func TestSplitV1MatchesDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		raw := randomRequestV1(rng)
		if err := checkSplitV1(raw); err != nil {
			t.Fatalf("request %d (%x): %v", n, raw, err)
		}
	}
}

// TestSplitV1MalformedAgreesWithDecode damages random requests (flipped,
// cut and inserted bytes): a request the receiver would accept still splits
// into the series gogo decodes, and nothing panics.
func TestSplitV1MalformedAgreesWithDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	refused := 0
	for n := range 5000 {
		raw := damage(rng, randomRequestV1(rng))
		if err := checkSplitV1(raw); err != nil {
			t.Fatalf("request %d (%x): %v", n, raw, err)
		}
		if SplitV1(raw, func(SeriesV1) {}, nil) != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no damaged request was refused: the damage does not reach the parser")
	}
}

// gogoQuirk is a request that gogo, and so the receiver, accepts although
// protowire refuses it: the series' tag is a 10-byte varint whose last byte
// carries more than one bit.
var gogoQuirk = append([]byte{0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0x06},
	0x0a, 0x04, 0x0a, 0x02, 'u', 'p')

// TestSplitV1TakesWhatGogoTakes: an acknowledged request must never be
// dropped later as one that does not split.
func TestSplitV1TakesWhatGogoTakes(t *testing.T) {
	var n int
	if err := SplitV1(gogoQuirk, func(SeriesV1) { n++ }, nil); err != nil || n != 1 {
		t.Fatalf("split %d series, err %v; gogo decodes one", n, err)
	}
	if err := checkSplitV1(gogoQuirk); err != nil {
		t.Fatal(err)
	}
}

// FuzzSplitV1 checks SplitV1 against gogo on any input: whatever gogo (and
// so the receiver) accepts splits into exactly its series; nothing panics.
func FuzzSplitV1(f *testing.F) {
	for _, seed := range decodeSeeds(f) {
		f.Add(seed)
	}
	f.Add(gogoQuirk)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5 {
		f.Add(randomRequestV1(rng))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkSplitV1(data); err != nil {
			t.Fatal(err)
		}
	})
}

// checkSplitV1 compares SplitV1 on raw with gogo's decode of it: the series
// and the metadata, which a forwarder passes on.
func checkSplitV1(raw []byte) error {
	var got []SeriesV1
	var meta []byte
	splitErr := SplitV1(raw, func(s SeriesV1) { got = append(got, s) }, func(f []byte) { meta = append(meta, f...) })
	var want prompb.WriteRequest
	if err := want.Unmarshal(raw); err != nil {
		if splitErr == nil && receiverAccepts(raw) {
			// SplitV1 may accept more than gogo (it decodes neither labels,
			// samples nor metadata), never less: the receiver must refuse
			// it, as gogo did.
			return fmt.Errorf("gogo refuses (%v) but the receiver accepts", err)
		}
		return nil
	}
	if splitErr != nil {
		return fmt.Errorf("gogo decodes, SplitV1 refuses: %w", splitErr)
	}
	if len(got) != len(want.Timeseries) {
		return fmt.Errorf("%d series, gogo decodes %d", len(got), len(want.Timeseries))
	}
	var r Request
	if err := r.Decode(raw, false); err != nil {
		return fmt.Errorf("gogo decodes, Decode refuses: %w", err)
	}
	for i, s := range got {
		if !bytes.Equal(r.Field(i), s.Field) {
			return fmt.Errorf("series %d: Request.Field is %x, SplitV1's %x", i, r.Field(i), s.Field)
		}
		if k := r.Key(i); k != nil && xxhash.Sum64(k) != s.Hash {
			return fmt.Errorf("series %d: Request.Key hashes to %x, SplitV1's hash is %x", i, xxhash.Sum64(k), s.Hash)
		}
	}
	var all []byte
	for i, s := range got {
		w := &want.Timeseries[i]
		var one prompb.WriteRequest
		if err := one.Unmarshal(s.Field); err != nil || len(one.Timeseries) != 1 {
			return fmt.Errorf("series %d: field %x is not one series: %v", i, s.Field, err)
		}
		if g, e := marshalled(&one.Timeseries[0]), marshalled(w); g != e {
			return fmt.Errorf("series %d: field decodes to %s, gogo to %s", i, g, e)
		}
		if e := wireHash(s.Field); s.Hash != e {
			return fmt.Errorf("series %d: hash %x, labels hash to %x", i, s.Hash, e)
		}
		if e := len(w.Samples) + len(w.Histograms); s.Items != e {
			return fmt.Errorf("series %d: %d items, gogo decodes %d", i, s.Items, e)
		}
		if e := newest(w); s.Newest != e {
			return fmt.Errorf("series %d: newest %d, want %d", i, s.Newest, e)
		}
		all = append(all, s.Field...)
	}
	var joined prompb.WriteRequest
	if err := joined.Unmarshal(all); err != nil {
		return fmt.Errorf("concatenated series do not decode: %w", err)
	}
	var gotMeta prompb.WriteRequest
	if err := gotMeta.Unmarshal(meta); err != nil {
		return fmt.Errorf("concatenated metadata fields do not decode: %w", err)
	}
	if g, e := fmt.Sprint(gotMeta.Metadata), fmt.Sprint(want.Metadata); g != e {
		return fmt.Errorf("metadata fields decode to %s, gogo decodes %s", g, e)
	}
	want.Metadata = nil
	if g, e := renderGogoV1(&joined), renderGogoV1(&want); g != e {
		return fmt.Errorf("concatenated series decode to\n%s\ngogo decodes\n%s", g, e)
	}
	return nil
}

// receiverAccepts reports whether the receiver takes raw: Decode accepts
// it and the labels of every series decode (the series cache decodes them
// for series it does not know).
func receiverAccepts(raw []byte) bool {
	var r Request
	if r.Decode(raw, false) != nil {
		return false
	}
	for i := range r.Len() {
		if _, err := r.Labels(i); err != nil {
			return false
		}
	}
	return true
}

// wireHash hashes the label fields of a Timeseries field as SeriesV1.Hash
// says: each whole field 1 of the message, walked field by field.
func wireHash(field []byte) uint64 {
	_, _, next, _ := tag(field, 0)
	start, end, _ := bytesField(field, next)
	ts := field[start:end]
	var b []byte
	for i := 0; i < len(ts); {
		num, _, _, err := tag(ts, i)
		if err != nil {
			return 0
		}
		end, err := skipField(ts, i)
		if err != nil {
			return 0
		}
		if num == 1 {
			b = append(b, ts[i:end]...)
		}
		i = end
	}
	return xxhash.Sum64(b)
}

func newest(ts *prompb.TimeSeries) int64 {
	var s, h int64
	if n := len(ts.Samples); n > 0 {
		s = ts.Samples[n-1].Timestamp
	}
	if n := len(ts.Histograms); n > 0 {
		h = ts.Histograms[n-1].Timestamp
	}
	return max(s, h)
}

// randomRequestV1 builds a v1 request by hand: series whose fields of
// different kinds interleave (labels split by samples, say), unknown fields
// at both levels, metadata, empty and odd label strings.
func randomRequestV1(rng *rand.Rand) []byte {
	var b []byte
	for range rng.IntN(6) {
		switch rng.IntN(8) {
		case 0:
			md := prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: randString(rng), Help: randString(rng)}
			b = appendMessage(b, 3, &md)
		case 1:
			b = protowire.AppendTag(b, 9, protowire.VarintType)
			b = protowire.AppendVarint(b, rng.Uint64())
		default:
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendBytes(b, randomSeriesV1(rng))
		}
	}
	return b
}

func randomSeriesV1(rng *rand.Rand) []byte {
	// One queue of encoded fields per kind; popped in random order, so the
	// order within a kind holds while kinds interleave.
	var kinds [5][][]byte
	for range rng.IntN(5) {
		l := prompb.Label{Name: randString(rng), Value: randString(rng)}
		kinds[0] = append(kinds[0], appendMessage(nil, 1, &l))
	}
	t := rng.Int64N(1 << 42)
	for range rng.IntN(4) {
		t += rng.Int64N(30000) - 1000 // now and then out of order
		s := prompb.Sample{Timestamp: t, Value: rng.NormFloat64()}
		kinds[1] = append(kinds[1], appendMessage(nil, 2, &s))
	}
	for range rng.IntN(2) {
		e := prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: randString(rng)}}, Value: 1, Timestamp: t}
		kinds[2] = append(kinds[2], appendMessage(nil, 3, &e))
	}
	for i := range rng.IntN(3) {
		h := prompb.FromIntHistogram(t+int64(rng.IntN(5000))-2500, testHistogram(i))
		kinds[3] = append(kinds[3], appendMessage(nil, 4, &h))
	}
	if rng.IntN(3) == 0 {
		u := protowire.AppendTag(nil, protowire.Number(5+rng.IntN(100)), protowire.BytesType)
		kinds[4] = append(kinds[4], protowire.AppendBytes(u, []byte(randString(rng))))
	}
	var b []byte
	for {
		var left []int
		for k := range kinds {
			if len(kinds[k]) > 0 {
				left = append(left, k)
			}
		}
		if len(left) == 0 {
			return b
		}
		k := left[rng.IntN(len(left))]
		b = append(b, kinds[k][0]...)
		kinds[k] = kinds[k][1:]
	}
}

func appendMessage(b []byte, num protowire.Number, m interface{ Marshal() ([]byte, error) }) []byte {
	raw, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, raw)
}

func randString(rng *rand.Rand) string {
	alphabet := []string{"", "a", "__name__", "job", "é", "\xff", "x_y", "0"}
	var s string
	for range rng.IntN(4) {
		s += alphabet[rng.IntN(len(alphabet))]
	}
	return s
}

// damage flips, cuts or inserts a few bytes.
func damage(rng *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	for range 1 + rng.IntN(3) {
		if len(b) == 0 {
			return []byte{byte(rng.IntN(256))}
		}
		i := rng.IntN(len(b))
		switch rng.IntN(3) {
		case 0:
			b[i] ^= byte(1 << rng.IntN(8))
		case 1:
			b = b[:i]
		default:
			b = append(b[:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
		}
	}
	return b
}
