package convert

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultMaxSamples is Pyroscope's default max_profile_stacktrace_samples.
const DefaultMaxSamples = 16000

// ErrTooManySamples is returned (wrapped) when a profile has more samples than
// the limit; Pyroscope answers it with 400.
var ErrTooManySamples = errors.New("too many samples")

// Memory a decoded sample holds beyond its wire bytes: the pprof Sample struct
// and its slice headers, the pointer to it, and the converted profiles.Sample.
// Measured with BenchmarkDecodedPprofMemory.
const (
	bytesPerSample = 200
	wireFactor     = 3 // decoded slices and strings per wire byte
)

// PprofShape reads only the top-level fields of an uncompressed pprof and
// returns its sample count and an estimate of the memory decoding and
// converting it takes, so that the cost can be charged, or the profile
// refused, before anything is allocated.
func PprofShape(raw []byte) (samples int, decoded int64, err error) {
	b := raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, fmt.Errorf("decode pprof: %w", protowire.ParseError(n))
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, 0, fmt.Errorf("decode pprof: %w", protowire.ParseError(n))
		}
		if num == 2 && typ == protowire.BytesType { // Profile.sample
			samples++
		}
		b = b[n:]
	}
	return samples, int64(len(raw))*wireFactor + int64(samples)*bytesPerSample, nil
}

// CheckSamples refuses a profile with more than max samples (max <= 0: no
// limit), in Pyroscope's words.
func CheckSamples(samples, max int, series string) error {
	if max > 0 && samples > max {
		return fmt.Errorf("%w: the profile with labels '%s' exceeds the samples count limit (max_profile_stacktrace_samples, actual: %d, limit: %d)",
			ErrTooManySamples, series, samples, max)
	}
	return nil
}

// GzipSize is the decompressed size a gzip stream declares in its trailer
// (modulo 4 GiB), or 0 when data is not gzip. It is a claim, used to charge
// memory before decompressing; Decompress still enforces its own bound.
func GzipSize(data []byte) int64 {
	if len(data) < 18 || data[0] != 0x1f || data[1] != 0x8b {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
}
