package otlp

import (
	"io"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	grpcencoding "google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // gzip: the default of the Collector's and Alloy's OTLP exporters
)

// The OpenTelemetry Collector's gRPC server accepts gzip, zstd and snappy
// request compression (configgrpc registers all three); so does Vispyr. grpc
// looks compressors up in a process-wide registry by the grpc-encoding
// header, so they are registered once, here, like grpc's own gzip.
func init() {
	grpcencoding.RegisterCompressor(&zstdCompressor{})
	grpcencoding.RegisterCompressor(&snappyCompressor{})
}

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep:
// exporters use a few MB at most, and a crafted frame must not reserve more.
const zstdMaxWindow = 32 << 20

// zstdCompressor pools decoders and encoders: each holds buffers of the
// window size, too costly to build per request.
type zstdCompressor struct {
	decoders sync.Pool
	encoders sync.Pool
}

func (*zstdCompressor) Name() string { return "zstd" }

func (c *zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if e, ok := c.encoders.Get().(*zstd.Encoder); ok {
		e.Reset(w)
		return &zstdWriter{Encoder: e, pool: &c.encoders}, nil
	}
	e, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &zstdWriter{Encoder: e, pool: &c.encoders}, nil
}

type zstdWriter struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (w *zstdWriter) Close() error {
	defer w.pool.Put(w.Encoder)
	return w.Encoder.Close()
}

func (c *zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	if d, ok := c.decoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err != nil {
			c.decoders.Put(d)
			return nil, err
		}
		return &zstdReader{Decoder: d, pool: &c.decoders}, nil
	}
	// Concurrency 1 decodes in the caller's goroutine: no background
	// goroutines to leak when a pooled decoder is dropped by the GC.
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
	if err != nil {
		return nil, err
	}
	return &zstdReader{Decoder: d, pool: &c.decoders}, nil
}

// zstdReader goes back to the pool when grpc closes it, after the message is
// read (or refused for its size).
type zstdReader struct {
	*zstd.Decoder
	pool *sync.Pool
}

func (r *zstdReader) Close() error {
	if r.Decoder == nil {
		return nil
	}
	// Reset(nil) drops the reference to the request's buffers.
	_ = r.Decoder.Reset(nil)
	r.pool.Put(r.Decoder)
	r.Decoder = nil
	return nil
}

// snappyCompressor speaks the snappy framing format, as the Collector's
// snappy gRPC compressor does.
type snappyCompressor struct{}

func (*snappyCompressor) Name() string { return "snappy" }

func (*snappyCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return snappy.NewBufferedWriter(w), nil
}

func (*snappyCompressor) Decompress(r io.Reader) (io.Reader, error) {
	return snappy.NewReader(r), nil
}
