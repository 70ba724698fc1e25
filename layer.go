package berth

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/store"
)

// Layer is one layer of an image.
type Layer struct {
	rt  *Runtime
	rec store.ImageLayer
	// size is the uncompressed size of the layer tar.
	size int64
}

// Digest is the digest of the layer blob as stored and pushed (usually
// compressed).
func (l *Layer) Digest() digest.Digest { return l.rec.Digest }

// DiffID is the digest of the uncompressed layer tar.
func (l *Layer) DiffID() digest.Digest { return l.rec.DiffID }

// ChainID identifies the layer together with the layers below it.
func (l *Layer) ChainID() digest.Digest { return l.rec.ChainID }

// MediaType is the layer blob's media type.
func (l *Layer) MediaType() string { return l.rec.MediaType }

// Size is the size of the layer blob in bytes.
func (l *Layer) Size() int64 { return l.rec.Size }

// UncompressedSize is the size of the uncompressed layer tar in bytes.
func (l *Layer) UncompressedSize() int64 { return l.size }

// Compressed opens the layer blob as stored.
func (l *Layer) Compressed(ctx context.Context) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.rt.store.OpenBlob(l.rec.Digest)
}

// Uncompressed opens the layer as a plain tar stream.
func (l *Layer) Uncompressed(ctx context.Context) (io.ReadCloser, error) {
	f, err := l.Compressed(ctx)
	if err != nil {
		return nil, err
	}
	rc, _, err := archive.Decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: %w", l.rec.Digest, err)
	}
	return &readCloser{Reader: rc, close: func() error { rc.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
