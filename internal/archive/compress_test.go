package archive

import (
	"bytes"
	"io"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func sampleData(n int) []byte {
	rng := rand.New(rand.NewSource(1))
	words := []string{"layer ", "overlay ", "whiteout ", "digest ", "tar ", "\n", "0x7f ", "berth "}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

func TestCompressRoundTrip(t *testing.T) {
	data := sampleData(3 << 20)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			blob := compress(t, data, c)
			assert.Equal(t, c, DetectCompression(blob))
			// Deterministic: compressing again gives the same bytes.
			assert.Equal(t, blob, compress(t, data, c))
			r, got, err := Decompress(bytes.NewReader(blob))
			require.NoError(t, err)
			assert.Equal(t, c, got)
			out, err := io.ReadAll(r)
			require.NoError(t, err)
			require.NoError(t, r.Close())
			assert.Equal(t, data, out)
		})
	}
}

func TestGzipHeaderHasNoNameOrTime(t *testing.T) {
	blob := compress(t, []byte("x"), Gzip)
	// ID1 ID2 CM FLG MTIME(4) XFL OS
	assert.Equal(t, byte(0), blob[3], "no FNAME/FCOMMENT/FEXTRA flags")
	assert.Equal(t, []byte{0, 0, 0, 0}, blob[4:8], "no mtime")
}

func TestDecompressRefused(t *testing.T) {
	for name, head := range map[string][]byte{
		"bzip2": []byte("BZh91AY&SY"),
		"xz":    {0xfd, '7', 'z', 'X', 'Z', 0x00, 0, 0},
	} {
		_, c, err := Decompress(bytes.NewReader(head))
		assert.ErrorIs(t, err, errdefs.ErrNotSupported, name)
		assert.Contains(t, err.Error(), name)
		assert.Equal(t, name, c.String())
	}
	_, err := Compress(io.Discard, Xz)
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
}

func TestDecompressCorrupt(t *testing.T) {
	data := sampleData(1 << 20)
	for _, c := range []Compression{Gzip, Zstd} {
		blob := bytes.Clone(compress(t, data, c))
		blob[len(blob)/2] ^= 0xff
		blob[len(blob)/2+1] ^= 0xff
		r, _, err := Decompress(bytes.NewReader(blob))
		if err == nil {
			_, err = io.ReadAll(r)
		}
		assert.ErrorIs(t, err, errdefs.ErrCorrupt, c.String())
	}
	// A bad gzip header is caught at once.
	_, _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0x08, 0xff, 0xff}))
	assert.ErrorIs(t, err, errdefs.ErrCorrupt)
}

func TestDecompressSmallInputs(t *testing.T) {
	for _, in := range [][]byte{nil, {0x1f}, []byte("abc")} {
		r, c, err := Decompress(bytes.NewReader(in))
		require.NoError(t, err)
		assert.Equal(t, Uncompressed, c)
		out, _ := io.ReadAll(r)
		assert.Equal(t, len(in), len(out))
	}
}
