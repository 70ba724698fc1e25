package registry

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
)

// DefaultPlatform is the host's platform: linux on the architecture berth
// was built for.
func DefaultPlatform() ocispec.Platform {
	return NormalizePlatform(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// ParsePlatform parses docker's --platform value: os[/arch[/variant]], or
// an architecture alone ("arm64" means linux/arm64). Architecture aliases
// (x86_64, aarch64, armhf ...) are normalized. Malformed values are
// ErrInvalid errors.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	bad := func() (ocispec.Platform, error) {
		return ocispec.Platform{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid platform %q: want os[/arch[/variant]]", s))
	}
	for _, p := range parts {
		if p == "" {
			return bad()
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if knownOS(parts[0]) {
			p = ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return bad()
	}
	return NormalizePlatform(p), nil
}

func knownOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9", "android", "ios", "js", "wasip1":
		return true
	}
	return false
}

// NormalizePlatform folds architecture aliases and default variants the
// way containerd does: x86_64 is amd64, aarch64 is arm64 (variant v8 is
// its default), armhf is arm/v7, an arm without variant is arm/v7.
func NormalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "i386", "i486", "i586", "i686":
		p.Architecture = "386"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	}
	switch p.Architecture {
	case "amd64":
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "arm64":
		if p.Variant == "v8" || p.Variant == "8" {
			p.Variant = ""
		}
	case "arm":
		if p.Variant == "" {
			p.Variant = "v7"
		} else if !strings.HasPrefix(p.Variant, "v") {
			p.Variant = "v" + p.Variant
		}
	}
	return p
}

// FormatPlatform writes p as os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// MatchPlatform reports whether an image for have runs where want is
// asked for: same OS and architecture, and the variant asked for (any
// variant when want has none, after normalization).
func MatchPlatform(want, have ocispec.Platform) bool {
	want, have = NormalizePlatform(want), NormalizePlatform(have)
	if have.OS == "" {
		have.OS = "linux"
	}
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	return want.Variant == "" || want.Variant == have.Variant
}

// selectManifest picks the entry of an index for want: one with the exact
// variant first, then any that matches.
func selectManifest(descs []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, bool) {
	want = NormalizePlatform(want)
	for _, exact := range []bool{true, false} {
		for _, d := range descs {
			if d.Platform == nil {
				continue
			}
			have := NormalizePlatform(*d.Platform)
			if !MatchPlatform(want, have) {
				continue
			}
			if exact && want.Variant != have.Variant {
				continue
			}
			return d, true
		}
	}
	return ocispec.Descriptor{}, false
}
