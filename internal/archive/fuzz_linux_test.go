package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-run/berth/internal/testutil"
)

// FuzzApply feeds arbitrary streams to Apply: it may fail, but it must
// not panic and must write nothing outside its directory.
func FuzzApply(f *testing.F) {
	seeds := [][]byte{
		mkTar(f, dirEnt("d"), regEnt("d/f", "x"), symEnt("l", "d"), linkEnt("h", "d/f"), regEnt(".wh.gone", ""), regEnt("d/.wh..wh..opq", "")),
		mkTar(f, symEnt("l", "/"), regEnt("l/x", "x")),
		mkTar(f, symEnt("l", "../sentinel"), linkEnt("h", "l/file")),
		mkTar(f, regEnt("../x", ""), devEnt("dev/null", tar.TypeChar, 1, 3), devEnt("p", tar.TypeFifo, 0, 0)),
		mkTar(f, dirEnt("a"), symEnt("a", "../sentinel"), regEnt("a/f", "")),
		mkTar(f, regEnt("f", "x").with(func(h *tar.Header) {
			h.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.xattr.trusted.overlay.opaque": "y"}
		})),
	}
	for _, s := range seeds[:2] {
		seeds = append(seeds, compress(f, s, Gzip), compress(f, s, Zstd))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		testutil.RequiresRoot(t)
		s := newSandbox(t)
		// Devices are skipped: a fuzzer-made device node is not
		// something to leave in /tmp.
		res, err := Apply(context.Background(), s.target, bytes.NewReader(data), ApplyOptions{MaxSize: 8 << 20, Devices: DevicesSkip})
		if err == nil && res.Size > 8<<20 {
			t.Fatalf("size %d over the limit", res.Size)
		}
		s.check(t)
		// Whatever landed in the target must be inside it: no symlink
		// was followed while writing, so every path resolves below it.
		filepath.Walk(s.target, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			rel, rerr := filepath.Rel(s.target, p)
			if rerr != nil || rel == ".." || len(rel) > 2 && rel[:3] == "../" {
				t.Fatalf("%s is outside the target", p)
			}
			return nil
		})
	})
}
