package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
)

// DefaultMaxSize is the ApplyOptions.MaxSize used when it is zero: 1 TiB of
// uncompressed tar.
const DefaultMaxSize int64 = 1 << 40

// DevicePolicy says what Apply does with character and block device entries.
// Whiteouts (".wh." entries, and 0/0 character devices) are not devices in
// this sense and are always applied.
type DevicePolicy int

const (
	// DevicesAllow creates device nodes (needs CAP_MKNOD).
	DevicesAllow DevicePolicy = iota
	// DevicesReject rejects a layer that contains a device node.
	DevicesReject
	// DevicesSkip leaves device nodes out (rootless unpacking).
	DevicesSkip
)

// ApplyOptions tune Apply. The zero value suits a root process unpacking a
// registry layer.
type ApplyOptions struct {
	// MaxSize bounds the uncompressed tar stream and so the sum of the entry
	// sizes: a layer that declares or holds more is rejected before its data
	// is written. Default DefaultMaxSize (1 TiB).
	MaxSize int64
	// NoChown keeps the files owned by the calling user instead of the
	// uid/gid in the tar (for unprivileged unpacking). Default false.
	NoChown bool
	// Devices says what to do with device nodes. Default DevicesAllow.
	Devices DevicePolicy
	// Progress, if set, is called with the total number of bytes read
	// from r so far (compressed bytes for a compressed layer) after each
	// read, from a goroutine Apply starts; calls do not overlap and all
	// happen before Apply returns. Default nil.
	Progress func(read int64)
}

// Result describes an applied layer.
type Result struct {
	// DiffID is the sha256 of the uncompressed tar stream, read to its end:
	// the layer's diffID.
	DiffID digest.Digest
	// Size is the length of the uncompressed tar stream in bytes.
	Size int64
	// Compressed is the length of the stream read from r (equal to Size for
	// a plain tar).
	Compressed int64
	// Compression is the compression Apply detected.
	Compression Compression
	// Files is the number of entries applied, whiteouts included.
	Files int
}

// Apply unpacks the layer tar read from r (plain, gzip or zstd, detected by
// magic bytes) into dir, an existing empty directory that becomes an
// overlay lower directory: ".wh.NAME" entries become 0/0 character devices
// NAME and ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory.
//
// Entries are applied in order with docker's semantics: a later entry
// replaces an earlier one of the same name (a directory entry for an
// existing directory only updates its metadata); missing parents are
// created 0755 and owned by the caller; directories get their mode and
// times after their contents. Ownership, mode (setuid, setgid and sticky
// included), times and xattrs (PAX SCHILY.xattr records, security.capability
// included; trusted.overlay.* is dropped) are kept.
//
// Any entry whose name or hardlink target is outside dir, or whose parent is
// a symlink, rejects the layer with an errdefs.ErrInvalid error naming the
// entry; corrupt compressed data gives errdefs.ErrCorrupt. Apply never
// writes outside dir, but on error dir holds a partial layer: the caller
// removes it. Apply reads r to its end, so Result.DiffID covers the whole
// stream. Nothing is fsynced: the caller syncs (SyncFS) before it publishes
// the layer.
//
// Cancelling ctx stops Apply between entries, within large files and
// while it waits for data. Apply returns only after a read of r that is
// under way has returned, and never touches r afterwards.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (Result, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	a, err := newApplier(dir, opts)
	if err != nil {
		return Result{}, err
	}
	defer a.close()

	src := &sourceReader{r: r, progress: opts.Progress}
	dr, c, err := Decompress(src)
	if err != nil {
		return Result{}, fmt.Errorf("layer: %w", err)
	}
	defer dr.Close()
	lr := &layerReader{r: dr, h: sha256.New(), max: opts.MaxSize}
	// Decompress and hash in a goroutine while this one writes files.
	ra := newReadahead(ctx, lr, readaheadBlock, readaheadDepth)
	defer ra.stop() // before dr.Close
	res := Result{Compression: c}
	tr := tar.NewReader(ra)

	var declared int64
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, streamErr("reading tar header", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return res, entryErr(hdr.Name, err)
		}
		if hdr.Size < 0 || hdr.Size > opts.MaxSize-declared {
			return res, entryErr(hdr.Name, errdefs.New(errdefs.ErrInvalid,
				fmt.Sprintf("size %d exceeds the layer limit of %d bytes", hdr.Size, opts.MaxSize)))
		}
		declared += hdr.Size
		applied, err := a.entry(ctx, hdr, name, tr)
		if err != nil {
			return res, entryErr(hdr.Name, err)
		}
		if applied {
			res.Files++
		}
	}
	if err := a.finish(); err != nil {
		return res, err
	}
	// Read the end-of-archive blocks and any padding after them: the
	// diffID is the digest of the whole stream.
	if _, err := io.Copy(io.Discard, ra); err != nil {
		return res, streamErr("reading tar trailer", err)
	}
	ra.stop()
	res.DiffID = digest.NewDigest(digest.SHA256, lr.h)
	res.Size = lr.n
	res.Compressed = src.n
	return res, nil
}

// entryErr names the tar entry in err, keeping its kinds matchable.
func entryErr(name string, err error) error {
	if isSourceError(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("tar entry %q: %w", shorten(name), err)
}

// shorten cuts a name for an error message.
func shorten(name string) string {
	const max = 200
	if len(name) <= max {
		return name
	}
	return name[:max] + fmt.Sprintf("...(%d bytes)", len(name))
}

// streamErr classes an error from reading the tar stream: the caller's own
// read errors and decompression errors keep their kind, tar format errors
// become ErrInvalid.
func streamErr(what string, err error) error {
	if isSourceError(err) {
		return err
	}
	var k *errdefs.Kind
	if errors.As(err, &k) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err == io.ErrUnexpectedEOF {
		return errdefs.Wrap(errdefs.ErrInvalid, what+": tar stream is truncated", err)
	}
	return errdefs.Wrap(errdefs.ErrInvalid, what+": malformed tar", err)
}

// sourceReader counts the bytes read from the caller's reader, reports
// progress, and marks the reader's own errors so that they are not mistaken
// for corrupt data.
type sourceReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.n += int64(n)
		if s.progress != nil {
			s.progress(s.n)
		}
	}
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// sourceError is an error returned by the reader given to Apply.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading layer: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func isSourceError(err error) bool {
	var s *sourceError
	return errors.As(err, &s)
}

// layerReader hashes and counts the uncompressed stream and enforces the
// size limit.
type layerReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (l *layerReader) Read(p []byte) (int, error) {
	if l.n >= l.max {
		// Allow one byte past the limit to tell "exactly max" from "more".
		p = p[:min(len(p), 1)]
	} else if rest := l.max - l.n; int64(len(p)) > rest {
		p = p[:rest+1]
	}
	n, err := l.r.Read(p)
	l.h.Write(p[:n])
	l.n += int64(n)
	if l.n > l.max {
		return n, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("layer is larger than the limit of %d bytes", l.max))
	}
	return n, err
}

// Readahead of the uncompressed stream: blocks of readaheadBlock bytes,
// readaheadDepth of them ahead of the files being written.
const (
	readaheadBlock = 1 << 20
	readaheadDepth = 4
)

// Limits on names, as Linux has them.
const (
	maxPath = 4095
	maxName = 255
)

// cleanName turns a tar entry name into a slash-separated path relative to
// the layer root, without ".", ".." or empty components; "" is the root. A
// leading "/" is ignored (tars commonly have one); a ".." that would leave
// the root is an error, as are NUL bytes and names longer than Linux allows.
// Names that are already clean are returned without allocating.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errdefs.New(errdefs.ErrInvalid, "name contains a NUL byte")
	}
	if len(name) > maxPath {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("name is longer than %d bytes", maxPath))
	}
	s := strings.Trim(name, "/")
	clean := true
	for rest := s; rest != ""; {
		c, tail, _ := strings.Cut(rest, "/")
		if c == "" || c == "." || c == ".." {
			clean = false
		}
		if len(c) > maxName {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("name has a component longer than %d bytes", maxName))
		}
		rest = tail
	}
	if clean {
		return s, nil
	}
	var stack []string
	for _, c := range strings.Split(s, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(stack) == 0 {
				return "", errdefs.New(errdefs.ErrInvalid, "name escapes the layer root")
			}
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, c)
		}
	}
	return strings.Join(stack, "/"), nil
}

// splitName splits a clean name into its parent ("" for the root) and base.
func splitName(name string) (parent, base string) {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// Whiteout names, as docker and the OCI image spec define them.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Overlay xattrs.
const (
	overlayXattrPrefix = "trusted.overlay."
	opaqueXattr        = "trusted.overlay.opaque"
	paxXattr           = "SCHILY.xattr."
)
