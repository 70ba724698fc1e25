package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"testing"
)

// benchTar is a ~100 MB layer of 4,000 files: many small text-like files
// and some large binary-like ones, in a few hundred directories, like a
// /usr/lib. BERTH_BENCH_TREE=/some/dir archives a real tree instead.
func benchTar(b *testing.B) []byte {
	b.Helper()
	if dir := os.Getenv("BERTH_BENCH_TREE"); dir != "" {
		var buf bytes.Buffer
		if err := Tar(context.Background(), &buf, dir, TarOptions{}); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	rng := rand.New(rand.NewSource(42))
	text := sampleData(4 << 20)
	bin := make([]byte, 8<<20)
	rng.Read(bin)
	for i := range bin { // half random, half structured: compresses ~2:1
		if i%4096 < 2048 {
			bin[i] = text[i%len(text)]
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for d := 0; d < 300; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d/", d)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: testTime})
		for f := 0; f < 13; f++ {
			var data []byte
			if rng.Intn(40) == 0 {
				n := 1<<20 + rng.Intn(2<<20)
				off := rng.Intn(len(bin) - n)
				data = bin[off : off+n]
			} else {
				n := 512 + rng.Intn(24<<10)
				off := rng.Intn(len(text) - n)
				data = text[off : off+n]
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sfile%02d.so", dir, f), Mode: 0o644, Size: int64(len(data)), ModTime: testTime})
			tw.Write(data)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: dir + "link", Linkname: "file00.so", ModTime: testTime})
	}
	tw.Close()
	return buf.Bytes()
}

func BenchmarkApply(b *testing.B) {
	raw := benchTar(b)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		blob := compress(b, raw, c)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportMetric(float64(len(blob))/float64(len(raw)), "ratio")
			for b.Loop() {
				b.StopTimer()
				dir, err := os.MkdirTemp("", "bench-apply-")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := Apply(context.Background(), dir, bytes.NewReader(blob), ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
		})
	}
}

func BenchmarkCompress(b *testing.B) {
	raw := benchTar(b)
	for _, c := range []Compression{Gzip, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				compress(b, raw, c)
			}
		})
	}
}
