// Package pull_test measures a cold pull and unpack of a multi-layer
// Debian image with redis-server from a local registry, by berth and by
// podman, alternated in one run.
//
//	BERTH_TEST_STRICT=1 go test -run '^$' -bench PullVsPodman -benchtime 1x ./bench/pull/
//
// The image is built once and cached (BERTH_BENCH_CACHE, default
// /var/cache/berth-bench): `debootstrap --variant=minbase
// --include=redis-server bookworm` from the mirror of the machine's apt
// sources, split into four layers (the way a Dockerfile would make them:
// the libraries, the rest of /usr, the package state in /var, and the
// configuration and top level), gzip-compressed, loaded into berth and
// pushed to Debian's docker-registry on 127.0.0.1. Each round pulls it
// with berth and with podman (each into its own store, from which the
// image is removed again after the pull); BERTH_BENCH_ROUNDS (default 7)
// rounds; medians and their ratio are reported. The stores live under
// $TMPDIR (TMPDIR=/dev/shm takes the filesystem's inode creation cost,
// which dominates on slow virtual disks, out of the comparison).
package pull_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

func BenchmarkPullVsPodman(b *testing.B) {
	testutil.RequiresRoot(b)
	testutil.RequiresCommand(b, "debootstrap")
	pm := testutil.NewPodman(b)
	archive := fixture(b)
	reg := testutil.StartRegistry(b, testutil.RegistryOptions{})
	ctx := context.Background()
	scratch := b.TempDir()
	rounds, _ := strconv.Atoi(os.Getenv("BERTH_BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 7
	}
	ref := reg.Addr + "/bench/redis:bookworm"

	// Load the fixture into a store and push it.
	src := open(b, filepath.Join(scratch, "src"))
	f, err := os.Open(archive)
	if err != nil {
		b.Fatal(err)
	}
	loaded, err := src.Load(ctx, f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := src.Push(ctx, loaded[0].ID(), ref); err != nil {
		b.Fatal(err)
	}
	var size, unpacked int64
	for _, l := range loaded[0].Layers() {
		size += l.Size()
		unpacked += l.UncompressedSize()
	}
	b.Logf("image: %d layers, %.1f MB compressed, %.1f MB unpacked", len(loaded[0].Layers()), float64(size)/1e6, float64(unpacked)/1e6)
	src.Close()

	// Each engine pulls into its own store, which persists across rounds
	// (the image is removed after each pull), so both allocate in
	// directories of the same age.
	rt := open(b, filepath.Join(scratch, "berth"))
	defer rt.Close()
	var berthTimes, podmanTimes []time.Duration
	berthPull := func() {
		syncDisks()
		start := time.Now()
		if _, err := rt.Pull(ctx, ref); err != nil {
			b.Fatal(err)
		}
		berthTimes = append(berthTimes, time.Since(start))
		if _, err := rt.RemoveImage(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
	podmanPull := func() {
		syncDisks()
		start := time.Now()
		pm.Run("pull", "-q", "--tls-verify=false", ref)
		podmanTimes = append(podmanTimes, time.Since(start))
		pm.Run("rmi", "-f", ref)
	}
	b.ResetTimer()
	// Who goes first alternates (ABBA...), as the one that follows the
	// other's removal can be slowed by the filesystem's freeing work.
	for i := 0; i < rounds; i++ {
		if i%2 == 0 {
			berthPull()
			podmanPull()
		} else {
			podmanPull()
			berthPull()
		}
	}
	b.StopTimer()
	bm, pmed := median(berthTimes), median(podmanTimes)
	b.Logf("berth  pull: median %v of %v", bm.Round(time.Millisecond), rounded(berthTimes))
	b.Logf("podman pull: median %v of %v", pmed.Round(time.Millisecond), rounded(podmanTimes))
	b.Logf("ratio berth/podman: %.3f (target <= 0.35)", float64(bm)/float64(pmed))
	b.ReportMetric(float64(bm.Milliseconds()), "berth-ms")
	b.ReportMetric(float64(pmed.Milliseconds()), "podman-ms")
	b.ReportMetric(float64(bm)/float64(pmed), "ratio")
}

func open(b *testing.B, dir string) *berth.Runtime {
	rt, err := berth.Open(context.Background(), berth.WithRoot(filepath.Join(dir, "root")), berth.WithRunRoot(filepath.Join(dir, "run")),
		berth.WithRegistryConfig(berth.RegistryConfig{}), berth.WithAuthFile(filepath.Join(dir, "auth.json")))
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

// syncDisks writes dirty pages back so that one pull's writeback does
// not land on the next one's clock (the registry's blobs stay in the page
// cache: both pull from memory).
func syncDisks() { syscall.Sync() }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// fixture returns the path of the OCI archive of the benchmark image,
// building (and caching) it when needed.
func fixture(b *testing.B) string {
	cache := os.Getenv("BERTH_BENCH_CACHE")
	if cache == "" {
		cache = "/var/cache/berth-bench"
	}
	archive := filepath.Join(cache, "bookworm-redis.oci.tar")
	if _, err := os.Stat(archive); err == nil {
		return archive
	}
	mirror, err := debianMirror()
	if err != nil {
		b.Fatal(err)
	}
	rootfs := filepath.Join(cache, "rootfs")
	os.RemoveAll(rootfs)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Logf("debootstrap bookworm with redis-server from %s (once; cached in %s)", mirror, cache)
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include=redis-server", "bookworm", rootfs, mirror)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("debootstrap: %v\n%s", err, tail(out.String()))
	}
	// Leave out what a container image does not carry.
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "proc", "sys", "dev"} {
		ents, _ := os.ReadDir(filepath.Join(rootfs, p))
		for _, e := range ents {
			if e.Name() != "partial" && e.Name() != "lock" {
				os.RemoveAll(filepath.Join(rootfs, p, e.Name()))
			}
		}
	}
	tmp := archive + ".tmp"
	if err := writeArchive(rootfs, tmp); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, archive); err != nil {
		b.Fatal(err)
	}
	os.RemoveAll(rootfs)
	return archive
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// debianMirror is the Debian archive of the machine's apt sources (deb822
// .sources or one-line .list files) that serves bookworm.
func debianMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	lists = append([]string{"/etc/apt/sources.list"}, lists...)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var uris, suites string
		sc := bufio.NewScanner(f)
		flush := func() (string, bool) {
			defer func() { uris, suites = "", "" }()
			if strings.Contains(" "+suites+" ", " bookworm ") {
				for _, u := range strings.Fields(uris) {
					if strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
						return u, true
					}
				}
			}
			return "", false
		}
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				if u, ok := flush(); ok {
					f.Close()
					return u, nil
				}
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				switch strings.ToLower(k) {
				case "uris":
					uris = v
				case "suites":
					suites = v
				}
			}
		}
		f.Close()
		if u, ok := flush(); ok {
			return u, nil
		}
	}
	for _, p := range lists {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			if len(fields) >= 3 && fields[0] == "deb" {
				i := 1
				if strings.HasPrefix(fields[1], "[") {
					for i < len(fields) && !strings.HasSuffix(fields[i], "]") {
						i++
					}
					i++
				}
				if i+1 < len(fields) && fields[i+1] == "bookworm" {
					return fields[i], nil
				}
			}
		}
	}
	return "", fmt.Errorf("no Debian bookworm mirror in the apt sources")
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
			Annotations: map[string]string{ocispec.AnnotationRefName: "bench/redis:bookworm"}}}}
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
