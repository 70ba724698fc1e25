// Package pull makes the image of the harness's cold-pull scenario: a
// ~135 MB Debian bookworm (minbase) with redis-server in four layers of
// comparable size, split by path the way a Dockerfile would make them
// (the libraries, the rest of /usr, the package state in /var, and the
// configuration and top level), gzip-compressed at the default level as
// docker and podman push them.
//
// Its file system is berth's redis fixture (internal/fixtures: Debian's
// packages, debootstrapped from the mirror of the machine's apt sources),
// flattened; the archive is cached beside a key of that fixture, so it is
// made once per machine and again only when the fixture's recipe changes.
package pull

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/fixtures"
)

// Ref is the name the image carries in its archive.
const Ref = "bench/redis:bookworm"

// DefaultCacheDir keeps the archive between runs unless BERTH_BENCH_CACHE
// names another directory.
const DefaultCacheDir = "/var/cache/berth-bench"

// Fixture returns the path of the image's OCI archive, making it with
// rt (whose store gets the redis fixture) when it is not cached.
func Fixture(ctx context.Context, rt *berth.Runtime) (string, error) {
	cache := os.Getenv("BERTH_BENCH_CACHE")
	if cache == "" {
		cache = DefaultCacheDir
	}
	src, _ := fixtures.Cached(fixtures.Redis, fixtures.Options{})
	key := strings.TrimSuffix(filepath.Base(src), ".tar") // the fixture's name and recipe key
	dst := filepath.Join(cache, "pull-"+key+".oci.tar")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if _, err := fixtures.Ensure(ctx, rt, fixtures.Redis, fixtures.Options{}); err != nil {
		return "", err
	}
	ref, _ := fixtures.Ref(fixtures.Redis)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	rootfs, err := os.MkdirTemp(cache, ".rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(rootfs)
	if err := flatten(ctx, rt, ref, rootfs); err != nil {
		return "", err
	}
	tmp := dst + ".tmp"
	defer os.Remove(tmp)
	if err := writeArchive(rootfs, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	// Archives made from older recipes of the fixture are of no use.
	old, _ := filepath.Glob(filepath.Join(cache, "pull-*.oci.tar"))
	for _, p := range old {
		if p != dst {
			os.Remove(p)
		}
	}
	return dst, nil
}

// flatten writes the file system of image ref (its layers applied in
// order) into the empty directory dir, through a container's export.
func flatten(ctx context.Context, rt *berth.Runtime, ref, dir string) error {
	c, err := rt.Create(ctx, berth.Spec{Image: ref, Network: "none"})
	if err != nil {
		return err
	}
	defer c.Remove(context.WithoutCancel(ctx), berth.RemoveForce())
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.Export(ctx, pw)) }()
	defer pr.Close()
	// Export has no whiteouts: Apply makes the tree as it is.
	if _, err := archive.Apply(ctx, dir, pr, archive.ApplyOptions{}); err != nil {
		return fmt.Errorf("flatten %s: %w", ref, err)
	}
	return nil
}

// layerOf puts a path of the rootfs into one of four layers.
func layerOf(rel string) int {
	switch {
	case rel == "usr/lib" || strings.HasPrefix(rel, "usr/lib/"):
		return 0
	case rel == "usr" || strings.HasPrefix(rel, "usr/"):
		return 1
	case rel == "var" || strings.HasPrefix(rel, "var/"):
		return 2
	}
	return 3
}

// writeArchive writes the rootfs as a four-layer OCI archive (gzip
// layers at the default level, as docker and podman push them).
func writeArchive(rootfs, dst string) error {
	var paths []string
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != rootfs {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	var layers [4]bytes.Buffer
	var tws [4]*tar.Writer
	for i := range tws {
		tws[i] = tar.NewWriter(&layers[i])
	}
	links := map[uint64]string{}
	for _, p := range paths {
		rel, _ := filepath.Rel(rootfs, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		st := fi.Sys().(*syscall.Stat_t)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = int(st.Uid), int(st.Gid), "", ""
		hdr.Format = tar.FormatPAX
		l := layerOf(rel)
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok && layerOf(first) == l {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[st.Ino] = rel
			}
		}
		if err := tws[l].WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tws[l], f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	now := time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	cfg := ocispec.Image{Created: &now, Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Cmd = []string{"redis-server", "--protected-mode", "no"}
	cfg.Config.ExposedPorts = map[string]struct{}{"6379/tcp": {}}
	blobs := map[digest.Digest][]byte{}
	var descs []ocispec.Descriptor
	for i := range tws {
		if err := tws[i].Close(); err != nil {
			return err
		}
		plain := layers[i].Bytes()
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
		zw.Write(plain)
		zw.Close()
		d := digest.FromBytes(z.Bytes())
		blobs[d] = z.Bytes()
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(z.Len())})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(plain))
		cfg.History = append(cfg.History, ocispec.History{Created: &now, CreatedBy: fmt.Sprintf("layer %d", i)})
	}
	rawCfg, _ := json.Marshal(cfg)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(rawCfg), Size: int64(len(rawCfg))}, Layers: descs}
	rawMan, _ := json.Marshal(m)
	blobs[digest.FromBytes(rawCfg)] = rawCfg
	blobs[digest.FromBytes(rawMan)] = rawMan
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: m.MediaType, Digest: digest.FromBytes(rawMan), Size: int64(len(rawMan)),
			Annotations: map[string]string{ocispec.AnnotationRefName: Ref}}}}
	rawIdx, _ := json.Marshal(idx)

	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := put(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put(ocispec.ImageIndexFile, rawIdx); err != nil {
		return err
	}
	for d, b := range blobs {
		if err := put("blobs/sha256/"+d.Encoded(), b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
