// Package reference parses image references the way docker does:
// "busybox" is docker.io/library/busybox:latest, "host:5000/x" keeps its
// registry, a missing tag means "latest" unless a digest is given.
package reference

import (
	"fmt"
	"regexp"
	"strings"

	dref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
)

// Ref is a normalized image reference: a repository name with a tag, a
// digest, or both.
type Ref struct {
	named dref.Named
}

// Parse normalizes s (docker's rules) and adds the tag "latest" when s has
// neither tag nor digest. Malformed input is an errdefs.ErrInvalid error.
func Parse(s string) (Ref, error) {
	r, err := ParseName(s)
	if err != nil {
		return Ref{}, err
	}
	return Ref{named: dref.TagNameOnly(r.named)}, nil
}

// ParseName normalizes s without adding a default tag: "busybox" stays a
// bare repository name (for `pull -a`, `search`, `images busybox`).
func ParseName(s string) (Ref, error) {
	if s == "" {
		return Ref{}, errdefs.New(errdefs.ErrInvalid, "invalid reference format: empty reference")
	}
	if IsID(s) {
		return Ref{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid reference format: %q is an image ID, not a name", s))
	}
	n, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("invalid reference format %q", s), err)
	}
	return Ref{named: n}, nil
}

// String is the fully qualified form: docker.io/library/busybox:latest.
func (r Ref) String() string {
	if r.named == nil {
		return ""
	}
	return r.named.String()
}

// Familiar is the short form docker prints: busybox:latest,
// 127.0.0.1:5000/app:v1.
func (r Ref) Familiar() string {
	if r.named == nil {
		return ""
	}
	return dref.FamiliarString(r.named)
}

// Name is the fully qualified repository: docker.io/library/busybox.
func (r Ref) Name() string {
	if r.named == nil {
		return ""
	}
	return r.named.Name()
}

// FamiliarName is the short repository name: busybox.
func (r Ref) FamiliarName() string {
	if r.named == nil {
		return ""
	}
	return dref.FamiliarName(r.named)
}

// Domain is the registry host: docker.io, 127.0.0.1:5000.
func (r Ref) Domain() string {
	if r.named == nil {
		return ""
	}
	return dref.Domain(r.named)
}

// Path is the repository path within its registry: library/busybox.
func (r Ref) Path() string {
	if r.named == nil {
		return ""
	}
	return dref.Path(r.named)
}

// Tag is the tag, or "" when the reference has none.
func (r Ref) Tag() string {
	if t, ok := r.named.(dref.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// Digest is the digest, or "" when the reference has none.
func (r Ref) Digest() digest.Digest {
	if d, ok := r.named.(dref.Digested); ok {
		return d.Digest()
	}
	return ""
}

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r.named == nil }

// WithTag returns the repository of r with the given tag (and no digest).
func (r Ref) WithTag(tag string) (Ref, error) {
	t, err := dref.WithTag(dref.TrimNamed(r.named), tag)
	if err != nil {
		return Ref{}, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("invalid tag %q", tag), err)
	}
	return Ref{named: t}, nil
}

// WithDigest returns the repository of r with the given digest (no tag).
func (r Ref) WithDigest(d digest.Digest) (Ref, error) {
	t, err := dref.WithDigest(dref.TrimNamed(r.named), d)
	if err != nil {
		return Ref{}, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("invalid digest %q", d), err)
	}
	return Ref{named: t}, nil
}

// Repository returns r without tag and digest.
func (r Ref) Repository() Ref { return Ref{named: dref.TrimNamed(r.named)} }

var (
	fullID = regexp.MustCompile(`^(sha256:)?[a-f0-9]{64}$`)
	hexRE  = regexp.MustCompile(`^[a-f0-9]+$`)
)

// IsID reports whether s is a full image or container ID (64 hex digits,
// optionally prefixed by "sha256:").
func IsID(s string) bool { return fullID.MatchString(s) }

// IsIDPrefix reports whether s could be a (short) ID: hex digits only,
// optionally prefixed by "sha256:".
func IsIDPrefix(s string) bool {
	return s != "" && hexRE.MatchString(strings.TrimPrefix(s, "sha256:"))
}
