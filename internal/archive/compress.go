package archive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-run/berth/internal/errdefs"
)

// Compression is the compression of a layer stream.
type Compression int

const (
	// Uncompressed is a plain tar stream.
	Uncompressed Compression = iota
	// Gzip is a gzip stream (media types ending in "+gzip").
	Gzip
	// Zstd is a zstd stream (media types ending in "+zstd").
	Zstd
	// Bzip2 is recognised so that it can be refused clearly; berth neither
	// reads nor writes it.
	Bzip2
	// Xz is recognised so that it can be refused clearly; berth neither
	// reads nor writes it.
	Xz
)

// String returns the name of the compression ("none", "gzip", "zstd", ...).
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte{'B', 'Z', 'h'}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// DetectCompression returns the compression whose magic bytes start b, or
// Uncompressed. Six bytes are enough to tell.
func DetectCompression(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, magicGzip):
		return Gzip
	case bytes.HasPrefix(b, magicZstd):
		return Zstd
	case bytes.HasPrefix(b, magicBzip2):
		return Bzip2
	case bytes.HasPrefix(b, magicXz):
		return Xz
	}
	return Uncompressed
}

// zstdMaxWindow bounds the memory a zstd frame may make the decoder
// allocate: 128 MiB covers every level up to --ultra -22.
const zstdMaxWindow = 128 << 20

// Decompress detects the compression of r by its magic bytes and returns a
// reader of the decompressed stream (r itself, buffered, for a plain tar).
// Read errors caused by corrupt compressed data are of kind
// errdefs.ErrCorrupt; bzip2 and xz streams are refused with
// errdefs.ErrNotSupported. Close releases the decompressor; it does not
// close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, Uncompressed, err
	}
	c := DetectCompression(head)
	switch c {
	case Uncompressed:
		return io.NopCloser(br), c, nil
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, corruptErr(c, err)
		}
		return &decompressor{r: zr, c: c, close: zr.Close}, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderConcurrency(2))
		if err != nil {
			return nil, c, corruptErr(c, err)
		}
		return &decompressor{r: zr, c: c, close: func() error { zr.Close(); return nil }}, c, nil
	}
	return nil, c, errdefs.New(errdefs.ErrNotSupported, "layer compression "+c.String()+" is not supported")
}

// decompressor classes the errors of a gzip or zstd reader as corrupt data,
// except those that come from the underlying reader, which it passes on
// unchanged (see sourceError).
type decompressor struct {
	r     io.Reader
	c     Compression
	close func() error
}

func (d *decompressor) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = corruptErr(d.c, err)
	}
	return n, err
}

func (d *decompressor) Close() error { return d.close() }

func corruptErr(c Compression, err error) error {
	if isSourceError(err) {
		return err
	}
	if err == io.ErrUnexpectedEOF {
		return errdefs.Wrap(errdefs.ErrCorrupt, c.String()+" stream is truncated", err)
	}
	return errdefs.Wrap(errdefs.ErrCorrupt, "corrupt "+c.String()+" stream", err)
}

// gzipLevel trades ratio for speed: klauspost's level 5 compresses a
// typical rootfs within a few percent of level 9 at several times its speed.
const gzipLevel = 5

// Compress returns a writer that compresses what is written to it into w
// with c (Uncompressed passes the bytes through). Close flushes the stream
// but does not close w.
//
// The output is deterministic: the same input and the same build of berth
// give the same bytes (no name or time in the gzip header; zstd output does
// not depend on the encoder's concurrency), so a layer compressed twice has
// the same digest.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		// The zero Header has no name, no comment and ModTime zero.
		zw, err := gzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, err
		}
		return zw, nil
	case Zstd:
		// Output does not depend on the concurrency; 2 overlaps block
		// encoding with the caller's writes.
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(2))
		if err != nil {
			return nil, err
		}
		return zw, nil
	}
	return nil, errdefs.New(errdefs.ErrNotSupported, "layer compression "+c.String()+" is not supported")
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
