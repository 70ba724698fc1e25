package archive

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"a":          "a",
		"a/b/":       "a/b",
		"/a":         "a",
		"./a":        "a",
		"a//b":       "a/b",
		"a/./b":      "a/b",
		"a/b/../c":   "a/c",
		".":          "",
		"./":         "",
		"/":          "",
		"a/..":       "",
		"..a/b..":    "..a/b..",
		".wh..wh.x/": ".wh..wh.x",
	} {
		got, err := cleanName(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"..", "../a", "a/../..", "/../a", "a/../../b", "a\x00b", string(bytes.Repeat([]byte("a"), 256))} {
		_, err := cleanName(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
	assert.Equal(t, 0.0, testing.AllocsPerRun(100, func() { cleanName("usr/lib/x86_64-linux-gnu/libc.so.6") }))
}
