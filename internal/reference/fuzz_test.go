package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-run/berth/internal/errdefs"
)

// FuzzParse: any string is a reference that round-trips through its full
// and familiar forms, or an ErrInvalid error; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"busybox", "busybox:1.36", "docker.io/library/busybox:latest", "library/busybox", "localhost:5000/a/b:c",
		"127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64), "app:v1@sha256:" + strings.Repeat("0", 64),
		"[::1]:5000/x", "UPPER/case", "", "a:b:c", "x@sha256:abc", "../../etc", strings.Repeat("a", 300),
		"sha256:" + strings.Repeat("b", 64), strings.Repeat("c", 12), "a//b", "a/b/", ":tag", "@",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		IsID(s)
		IsIDPrefix(s)
		for _, parse := range []func(string) (Ref, error){Parse, ParseName} {
			r, err := parse(s)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("%q: %v is not ErrInvalid", s, err)
				}
				continue
			}
			full := r.String()
			again, err := parse(full)
			if err != nil || again.String() != full {
				t.Fatalf("%q -> %q -> %q, %v", s, full, again.String(), err)
			}
			fam, err := parse(r.Familiar())
			if err != nil || fam.String() != full {
				t.Fatalf("%q: familiar %q -> %q, %v; want %q", s, r.Familiar(), fam.String(), err, full)
			}
			if !strings.HasPrefix(full, r.Name()) || r.Domain() == "" || !strings.HasPrefix(r.Name(), r.Domain()+"/") {
				t.Fatalf("%q: name %q, domain %q, full %q", s, r.Name(), r.Domain(), full)
			}
			if r.Tag() != "" {
				if _, err := r.Repository().WithTag(r.Tag()); err != nil {
					t.Fatalf("%q: WithTag(%q): %v", s, r.Tag(), err)
				}
			}
		}
	})
}
