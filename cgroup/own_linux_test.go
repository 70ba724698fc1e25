package cgroup

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// WithOwnCgroup places relative paths below another process's cgroups,
// so a process elsewhere in the tree finds a container's cgroup again.
func TestWithOwnCgroup(t *testing.T) {
	if DetectMode() != Legacy {
		t.Skip("the check below reads v1 paths")
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	other := regexp.MustCompile(`(?m)^(\d+):memory:.*$`).ReplaceAll(self, []byte("${1}:memory:/elsewhere/deep"))
	m, err := New("berth/abc", WithOwnCgroup(other))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Path("memory")
	if want := "/elsewhere/deep/berth/abc"; filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(got)))) != "elsewhere" || !hasSuffix(got, want) {
		t.Fatalf("memory path %q, want one ending in %q", got, want)
	}
	def, err := New("berth/abc")
	if err != nil {
		t.Fatal(err)
	}
	if def.Path("memory") == got {
		t.Fatal("WithOwnCgroup made no difference")
	}
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
