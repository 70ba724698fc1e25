package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	d := t.TempDir()
	s, err := Open(filepath.Join(d, "root"), filepath.Join(d, "run"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBlobs(t *testing.T) {
	s := newStore(t)
	data := []byte("hello blob")
	d, n, err := s.PutBlob(nil, bytes.NewReader(data), digest.FromBytes(data))
	if err != nil || n != int64(len(data)) || d != digest.FromBytes(data) {
		t.Fatalf("PutBlob = %s %d %v", d, n, err)
	}
	b, err := s.ReadBlob(d)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadBlob = %q %v", b, err)
	}
	// A mismatch stores nothing.
	wrong := digest.FromString("other")
	if _, _, err := s.PutBlob(nil, bytes.NewReader(data), wrong); !errors.Is(err, errdefs.ErrCorrupt) {
		t.Fatalf("mismatch: %v", err)
	}
	if s.HasBlob(wrong) {
		t.Fatal("mismatched blob stored")
	}
	assertEmptyTmp(t, s)
	if _, err := s.OpenBlob(wrong); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("OpenBlob missing: %v", err)
	}
	// Corrupt on disk: ReadBlob notices.
	if err := os.WriteFile(s.BlobPath(d), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(d); !errors.Is(err, errdefs.ErrCorrupt) {
		t.Fatalf("tampered: %v", err)
	}
}

func assertEmptyTmp(t *testing.T, s *Store) {
	t.Helper()
	ents, _ := os.ReadDir(s.Path("tmp"))
	if len(ents) != 0 {
		t.Fatalf("tmp not empty: %v", ents)
	}
}

func fillWith(content string) FillFunc {
	return func(dir string) (digest.Digest, int64, error) {
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644); err != nil {
			return "", 0, err
		}
		return digest.FromString(content), int64(len(content)), nil
	}
}

func TestLayerCreate(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base, err := s.CreateLayer(ctx, nil, "", digest.FromString("a"), fillWith("a"))
	if err != nil {
		t.Fatal(err)
	}
	if base.ChainID != digest.FromString("a") {
		t.Fatalf("base chain %s", base.ChainID)
	}
	top, err := s.CreateLayer(ctx, nil, base.ChainID, "", fillWith("b"))
	if err != nil {
		t.Fatal(err)
	}
	if want := ChainIDs([]digest.Digest{digest.FromString("a"), digest.FromString("b")})[1]; top.ChainID != want {
		t.Fatalf("chain %s want %s", top.ChainID, want)
	}
	b, err := os.ReadFile(filepath.Join(s.LayerLink(top.ChainID), "f"))
	if err != nil || string(b) != "b" {
		t.Fatalf("via short link: %q %v", b, err)
	}
	// Wrong content for a known diffID: refused, nothing kept.
	_, err = s.CreateLayer(ctx, nil, "", digest.FromString("c"), fillWith("not c"))
	if !errors.Is(err, errdefs.ErrCorrupt) {
		t.Fatalf("corrupt layer: %v", err)
	}
	if _, err := s.GetLayer(digest.FromString("c")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("corrupt layer visible: %v", err)
	}
	// A failing fill leaves nothing.
	_, err = s.CreateLayer(ctx, nil, "", digest.FromString("d"), func(dir string) (digest.Digest, int64, error) {
		os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
		return "", 0, errors.New("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("fill error: %v", err)
	}
	assertEmptyTmp(t, s)
	ls, _ := s.Layers()
	if len(ls) != 2 {
		t.Fatalf("layers %v", ls)
	}
	if err := s.DeleteLayer(top.ChainID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.LayerLink(top.ChainID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("link left behind")
	}
	assertEmptyTmp(t, s)
}

func TestLayerConcurrentCreateFillsOnce(t *testing.T) {
	s := newStore(t)
	var fills atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateLayer(context.Background(), nil, "", digest.FromString("x"), func(dir string) (digest.Digest, int64, error) {
				fills.Add(1)
				return fillWith("x")(dir)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if fills.Load() != 1 {
		t.Fatalf("filled %d times", fills.Load())
	}
}

func TestOpenRemovesDeadTemp(t *testing.T) {
	s := newStore(t)
	// A temp entry of a process that has exited.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Skip("no /bin/true")
	}
	dead := filepath.Join(s.Path("tmp"), "999999999.1-layer-1")
	os.MkdirAll(filepath.Join(dead, "diff"), 0o755)
	mine := s.TempName("blob")
	os.WriteFile(mine, nil, 0o600)
	if _, err := Open(s.Root(), s.RunRoot()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dead process's temp dir kept")
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatal("live process's temp file removed")
	}
}

// A creator killed between making a layer's l/ link and renaming the
// layer into place leaves a dangling link; Open removes it, but not the
// link of a layer whose creator is at work (its lock held).
func TestOpenRemovesDanglingLayerLinks(t *testing.T) {
	s := newStore(t)
	lease := s.NewLease() // keeps the layer from the garbage collection
	defer lease.Release()
	kept, err := s.CreateLayer(context.Background(), lease, "", digest.FromString("kept"), fillWith("kept"))
	if err != nil {
		t.Fatal(err)
	}
	dangling, busy := digest.FromString("dangling"), digest.FromString("busy")
	for _, d := range []digest.Digest{dangling, busy} {
		if err := os.Symlink(LinkTarget(d), s.LayerLink(d)); err != nil {
			t.Fatal(err)
		}
	}
	lk, err := s.LockName("layer-" + busy.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	// What the killed creator left in tmp/ makes Open look for debris.
	os.MkdirAll(filepath.Join(s.Path("tmp"), "999999999.1-layer-1", "diff"), 0o755)
	if _, err := Open(s.Root(), s.RunRoot()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.LayerLink(dangling)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dangling link kept: %v", err)
	}
	for _, d := range []digest.Digest{kept.ChainID, busy} {
		if _, err := os.Lstat(s.LayerLink(d)); err != nil {
			t.Fatalf("link of %s removed: %v", d, err)
		}
	}
}

func TestImagesAndCollect(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	l1, _ := s.CreateLayer(ctx, nil, "", digest.FromString("1"), fillWith("1"))
	l2, _ := s.CreateLayer(ctx, nil, l1.ChainID, digest.FromString("2"), fillWith("2"))
	b1, _ := s.PutBlobBytes(nil, []byte("blob1"))
	b2, _ := s.PutBlobBytes(nil, []byte("blob2"))
	cfgA, _ := s.PutBlobBytes(nil, []byte(`{"a":1}`))
	cfgB, _ := s.PutBlobBytes(nil, []byte(`{"b":1}`))
	manA, _ := s.PutBlobBytes(nil, []byte(`{"m":"a"}`))
	manB, _ := s.PutBlobBytes(nil, []byte(`{"m":"b"}`))
	a := &Image{ID: cfgA, ManifestDigest: manA, Layers: []ImageLayer{{Digest: b1, ChainID: l1.ChainID}}}
	b := &Image{ID: cfgB, ManifestDigest: manB, Layers: []ImageLayer{{Digest: b1, ChainID: l1.ChainID}, {Digest: b2, ChainID: l2.ChainID}}}
	for _, im := range []*Image{a, b} {
		if err := s.PutImage(im); err != nil {
			t.Fatal(err)
		}
	}
	refs, _ := s.Refs()
	refs["docker.io/library/a:latest"] = a.ID
	if err := s.PutRefs(refs); err != nil {
		t.Fatal(err)
	}
	refs, _ = s.Refs()
	if got := refs.TagsOf(a.ID); len(got) != 1 {
		t.Fatalf("tags %v", got)
	}
	users, _ := s.LayerUsers()
	if users[l1.ChainID] != 2 || users[l2.ChainID] != 1 {
		t.Fatalf("users %v", users)
	}
	if err := s.DeleteImage(b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLayer(l2.ChainID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal("unused layer kept")
	}
	if _, err := s.GetLayer(l1.ChainID); err != nil {
		t.Fatal("shared layer removed")
	}
	if s.HasBlob(b2) || !s.HasBlob(b1) || s.HasBlob(cfgB) || !s.HasBlob(cfgA) {
		t.Fatal("blob collection wrong")
	}
}

func TestLeaseKeepsObjectsFromDeletion(t *testing.T) {
	s := newStore(t)
	lease := s.NewLease()
	l, err := s.CreateLayer(context.Background(), lease, "", digest.FromString("a"), fillWith("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PutBlobBytes(lease, []byte("blob"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLayer(l.ChainID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlob(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLayer(l.ChainID); err != nil || !s.HasBlob(b) {
		t.Fatal("leased objects were deleted")
	}
	lease.Release()
	s.DeleteLayer(l.ChainID)
	s.DeleteBlob(b)
	if _, err := s.GetLayer(l.ChainID); err == nil || s.HasBlob(b) {
		t.Fatal("released objects were not deleted")
	}
}
